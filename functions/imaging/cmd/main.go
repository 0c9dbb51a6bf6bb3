// Command imaging serves the imaging function:
// `PORT=9011 go run ./functions/imaging/cmd`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shopfn/shopfn/functions/imaging"
)

func main() {
	// SIGTERM drains: new deliveries get 503, running ones finish.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := imaging.Main(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "imaging:", err)
		os.Exit(1)
	}
}
