package main

import "errors"

// cmdPlot is not built yet; its issue replaces this file.
func cmdPlot(args []string) error { return errors.New("plot: not built yet") }
