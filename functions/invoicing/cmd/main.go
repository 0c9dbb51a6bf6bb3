// Command invoicing serves the invoicing function:
// `PORT=9012 go run ./functions/invoicing/cmd`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shopfn/shopfn/functions/invoicing"
)

func main() {
	// SIGTERM drains: new deliveries get 503, running ones finish.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := invoicing.Main(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "invoicing:", err)
		os.Exit(1)
	}
}
