// Command imaging serves the imaging function:
// `PORT=9011 go run ./functions/imaging/cmd`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/shopfn/shopfn/functions/imaging"
)

func main() {
	// No signal handling: the functions framework's server has no graceful
	// stop, and an interrupted delivery is redelivered.
	if err := imaging.Main(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "imaging:", err)
		os.Exit(1)
	}
}
