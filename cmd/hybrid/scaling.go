package main

import "errors"

// cmdScaling is not built yet; its issue replaces this file.
func cmdScaling(args []string) error { return errors.New("scaling: not built yet") }
