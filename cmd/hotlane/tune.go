package main

import (
	"context"
	"errors"
	"io"
)

func runTune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("tune: not built yet")
}

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("models: not built yet")
}

func runReports(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("reports: not built yet")
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("import: not built yet")
}
