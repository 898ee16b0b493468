package main

import "errors"

// cmdSweep is not built yet; its issue replaces this file.
func cmdSweep(args []string) error { return errors.New("sweep: not built yet") }
