package main

import "errors"

// cmdEval is not built yet; its issue replaces this file.
func cmdEval(args []string) error { return errors.New("eval: not built yet") }
