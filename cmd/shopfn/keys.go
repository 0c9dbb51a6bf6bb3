package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shopfn/shopfn/shared/auth"
)

func newKeysCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keys",
		Short: "Print a new token signing key and its public key, as environment settings",
		Long: `keys prints a new Ed25519 key pair for access tokens:
SHOPFN_JWT_SIGNING_KEY for the user service (a secret: keep it in a secret
manager) and SHOPFN_JWT_PUBLIC_KEYS for every service. Give the user
service both, so it never derives the public key at start-up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			signing, public, err := auth.GenerateKey()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "SHOPFN_JWT_SIGNING_KEY=%s\nSHOPFN_JWT_PUBLIC_KEYS=%s\n", signing, public)
			return nil
		},
	}
}
