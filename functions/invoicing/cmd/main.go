// Command invoicing serves the invoicing function:
// `PORT=9012 go run ./functions/invoicing/cmd`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/shopfn/shopfn/functions/invoicing"
)

func main() {
	// No signal handling: the functions framework's server has no graceful
	// stop, and an interrupted delivery is redelivered.
	if err := invoicing.Main(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "invoicing:", err)
		os.Exit(1)
	}
}
