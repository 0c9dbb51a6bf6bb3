// Command shopfn runs the whole system on one machine (`shopfn dev`) and is
// the client of its services (`shopfn user …`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	runChildFunction()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shopfn:", explain(err))
		os.Exit(1)
	}
}
