package main

import "errors"

// cmdTrain is not built yet; its issue replaces this file.
func cmdTrain(args []string) error { return errors.New("train: not built yet") }

// cmdGenerate is not built yet.
func cmdGenerate(args []string) error { return errors.New("generate: not built yet") }
