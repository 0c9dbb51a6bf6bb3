package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/shared/apperr"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "shopfn",
		Short: "Run and call the shopfn e-commerce backend",
		Long: `shopfn runs every deployable of the shop on this machine (shopfn dev)
and calls its services (shopfn user …).

Service addresses default to the ports shopfn dev uses; override them with
flags or SHOPFN_<SERVICE>_ADDR environment variables.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDevCmd(), newUserCmd(), newCatalogCmd(), newInventoryCmd(), newPaymentCmd(), newOrderCmd(), newSupportCmd(), newKeysCmd(), newDemoCmd(), newCallCmd(), newLoadCmd())
	return root
}

// explain turns an error from a service into one line a person can act on:
// the code, the message, the reason and any invalid fields.
func explain(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", st.Code(), st.Message())
	if r := apperr.Reason(err); r != "" && !strings.Contains(st.Message(), r) {
		fmt.Fprintf(&b, " [%s]", r)
	}
	if md := apperr.Metadata(err); len(md) > 0 {
		keys := slices.Sorted(maps.Keys(md))
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%s", k, md[k])
		}
	}
	if st.Code() == codes.Unavailable {
		b.WriteString(" (is `shopfn dev` running? see --addr)")
	}
	if st.Code() == codes.Unauthenticated && !errors.Is(err, errNoSession) {
		b.WriteString(" (log in again: shopfn user login)")
	}
	return b.String()
}
