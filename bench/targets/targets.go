// Package targets lists the deployables the benchmark tools in bench/cmd
// know how to build, start and load.
//
// To add one, write a function returning its benchkit.Target in a file of
// this package (see bare.go) and add it to All.
package targets

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shopfn/shopfn/bench/benchkit"
)

// All returns every registered target.
func All() []benchkit.Target {
	return []benchkit.Target{
		Bare(),
		User(),
		UserLogin(),
		UserNoCache(),
		GatewayGetProduct(), GatewayGetProductHTTP1(),
		SupportHistory(),
		CatalogGet(), CatalogList(),
		Inventory(), InventoryReserve(),
		Payment(), PaymentAuthorize(),
		OrderCreate(),
	}
}

// Lookup returns the registered target called name.
func Lookup(name string) (benchkit.Target, error) {
	all := All()
	i := slices.IndexFunc(all, func(t benchkit.Target) bool { return t.Name == name })
	if i < 0 {
		names := make([]string, len(all))
		for j, t := range all {
			names[j] = t.Name
		}
		return benchkit.Target{}, fmt.Errorf("unknown target %q (known: %s)", name, strings.Join(names, ", "))
	}
	return all[i], nil
}

// LookupPair returns the registered reference and target.
func LookupPair(refName, targetName string) (ref, target benchkit.Target, err error) {
	if ref, err = Lookup(refName); err != nil {
		return ref, target, err
	}
	target, err = Lookup(targetName)
	return ref, target, err
}
