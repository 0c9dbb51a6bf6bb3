package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/shopfn/shopfn/functions/catalog"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/dial"
)

// uploadChunkBytes is the chunk size of image uploads: a quarter of the
// 1 MiB a chunk may carry, small enough to keep memory flat on both sides.
const uploadChunkBytes = 256 << 10

// runCatalogDev runs the catalog deployable under `shopfn dev`.
func runCatalogDev(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg catalog.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir = o.port, o.dataDir
	cfg.Events, cfg.PubSubProject = o.events, o.project
	return catalog.Run(ctx, cfg, log, lis)
}

// withCatalog calls fn with a catalog service client. Reads, updates (etag)
// and SetProductImages are safe to retry; creating, importing and uploading
// are not retried by the channel.
func withCatalog(addr string, fn func(catalogv1.CatalogServiceClient) error) error {
	return withClient(addr, dial.Options{Idempotent: []string{
		catalogv1.CatalogService_GetProduct_FullMethodName,
		catalogv1.CatalogService_ListProducts_FullMethodName,
		catalogv1.CatalogService_UpdateProduct_FullMethodName,
		catalogv1.CatalogService_SetProductImages_FullMethodName,
	}}, catalogv1.NewCatalogServiceClient, fn)
}

func newCatalogCmd() *cobra.Command {
	var addr, userAddr string
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Browse and manage products (changes need an admin login)",
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", envOr("SHOPFN_CATALOG_ADDR", "localhost:9002"),
		"catalog service address: host:port (plaintext) or https://host (TLS) [$SHOPFN_CATALOG_ADDR]")
	cmd.PersistentFlags().StringVar(&userAddr, "user-addr", envOr("SHOPFN_USER_ADDR", "localhost:9001"),
		"user service the saved login came from [$SHOPFN_USER_ADDR]")

	// admin returns the context with the saved login; optional returns it
	// when there is one (an admin sees inactive products), else ctx as is.
	admin := func(cmd *cobra.Command) (context.Context, error) {
		ctx, _, err := withSession(cmd.Context(), userAddr)
		return ctx, err
	}
	optional := func(cmd *cobra.Command) context.Context {
		if ctx, _, err := withSession(cmd.Context(), userAddr); err == nil {
			return ctx
		}
		return cmd.Context()
	}

	var d productFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Add a product",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, err := admin(cmd)
			if err != nil {
				return err
			}
			return withCatalog(addr, func(c catalogv1.CatalogServiceClient) error {
				resp, err := c.CreateProduct(ctx, &catalogv1.CreateProductRequest{Product: d.draft()})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetProduct())
			})
		},
	}
	d.register(create)
	create.Flags().StringVar(&d.sku, "sku", "", "stock-keeping unit (required)")
	create.MarkFlagRequired("sku")
	create.MarkFlagRequired("name")
	create.MarkFlagRequired("price-minor")

	get := &cobra.Command{
		Use:   "get PRODUCT_ID",
		Short: "Show a product",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(addr, func(c catalogv1.CatalogServiceClient) error {
				resp, err := c.GetProduct(optional(cmd), &catalogv1.GetProductRequest{ProductId: args[0]})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetProduct())
			})
		},
	}

	var list catalogv1.ListProductsRequest
	var all bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List products by name, filtered and searched",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := optional(cmd)
			return withCatalog(addr, func(c catalogv1.CatalogServiceClient) error {
				for {
					resp, err := c.ListProducts(ctx, &list)
					if err != nil {
						return err
					}
					if !all {
						return printProto(cmd.OutOrStdout(), resp)
					}
					for _, p := range resp.GetProducts() {
						if err := printProto(cmd.OutOrStdout(), p); err != nil {
							return err
						}
					}
					if list.PageToken = resp.GetNextPageToken(); list.PageToken == "" {
						return nil
					}
				}
			})
		},
	}
	listCmd.Flags().StringVar(&list.Category, "category", "", "only this category")
	listCmd.Flags().StringVar(&list.Query, "query", "", "words that must all appear in the name or description")
	listCmd.Flags().StringVar(&list.CurrencyCode, "currency", "", "currency of the price bounds (only its prices match)")
	listCmd.Flags().Int64Var(&list.MinPriceMinor, "min-price-minor", 0, "lowest price, in minor units")
	listCmd.Flags().Int64Var(&list.MaxPriceMinor, "max-price-minor", 0, "highest price, in minor units (0: none)")
	listCmd.Flags().BoolVar(&list.IncludeInactive, "include-inactive", false, "include inactive products (admins)")
	listCmd.Flags().Int32Var(&list.PageSize, "page-size", 0, "products per page (default 20, at most 100)")
	listCmd.Flags().StringVar(&list.PageToken, "page-token", "", "next_page_token of the previous page")
	listCmd.Flags().BoolVar(&all, "all", false, "follow the pages to the end, one product per JSON object")

	var u productFlags
	var etag string
	update := &cobra.Command{
		Use:   "update PRODUCT_ID",
		Short: "Change the flags given (name, description, category, price, active)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := admin(cmd)
			if err != nil {
				return err
			}
			var paths []string
			for flag, path := range map[string]string{"name": "name", "description": "description", "category": "category",
				"price-minor": "price", "currency": "price", "active": "active"} {
				if cmd.Flags().Changed(flag) && !slices.Contains(paths, path) {
					paths = append(paths, path)
				}
			}
			if len(paths) == 0 {
				return errors.New("nothing to change: give --name, --description, --category, --price-minor/--currency or --active")
			}
			return withCatalog(addr, func(c catalogv1.CatalogServiceClient) error {
				cur, err := c.GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: args[0]})
				if err != nil {
					return err
				}
				draft := u.draft()
				if !cmd.Flags().Changed("price-minor") {
					draft.Price.AmountMinor = cur.GetProduct().GetPrice().GetAmountMinor()
				}
				if !cmd.Flags().Changed("currency") {
					draft.Price.CurrencyCode = cur.GetProduct().GetPrice().GetCurrencyCode()
				}
				tag := etag
				if tag == "" {
					tag = cur.GetProduct().GetEtag()
				}
				resp, err := c.UpdateProduct(ctx, &catalogv1.UpdateProductRequest{
					ProductId: args[0], Product: draft, Etag: tag, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
				})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetProduct())
			})
		},
	}
	u.register(update)
	update.Flags().StringVar(&etag, "etag", "", "etag the change is based on (default: the product's current one)")

	importCmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Upsert products by SKU from JSON lines of ProductDraft (- for standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := admin(cmd)
			if err != nil {
				return err
			}
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			return withCatalog(addr, func(c catalogv1.CatalogServiceClient) error {
				stream, err := c.BulkImportProducts(ctx)
				if err != nil {
					return err
				}
				sc := bufio.NewScanner(in)
				sc.Buffer(make([]byte, 64<<10), 1<<20)
				for line := 1; sc.Scan(); line++ {
					text := strings.TrimSpace(sc.Text())
					if text == "" {
						continue
					}
					var d catalogv1.ProductDraft
					if err := protojson.Unmarshal([]byte(text), &d); err != nil {
						return fmt.Errorf("line %d: %w", line, err)
					}
					if err := stream.Send(&catalogv1.BulkImportProductsRequest{Product: &d}); err != nil {
						break // the server ended the stream; CloseAndRecv says why
					}
				}
				if err := sc.Err(); err != nil {
					return err
				}
				resp, err := stream.CloseAndRecv()
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp)
			})
		},
	}

	upload := &cobra.Command{
		Use:   "upload PRODUCT_ID FILE",
		Short: "Upload a JPEG, PNG or WebP image of a product",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := admin(cmd)
			if err != nil {
				return err
			}
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			return withCatalog(addr, func(c catalogv1.CatalogServiceClient) error {
				resp, err := uploadImage(ctx, c, args[0], f.Name(), f)
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp)
			})
		},
	}

	cmd.AddCommand(create, get, listCmd, update, importCmd, upload)
	return cmd
}

// uploadImage streams r as an upload: the header, then chunks.
func uploadImage(ctx context.Context, c catalogv1.CatalogServiceClient, productID, filename string, r io.Reader) (*catalogv1.UploadProductImageResponse, error) {
	stream, err := c.UploadProductImage(ctx)
	if err != nil {
		return nil, err
	}
	err = stream.Send(&catalogv1.UploadProductImageRequest{Part: &catalogv1.UploadProductImageRequest_Header{
		Header: &catalogv1.ImageUploadHeader{ProductId: productID, Filename: filename},
	}})
	buf := make([]byte, uploadChunkBytes)
	for err == nil {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			err = stream.Send(&catalogv1.UploadProductImageRequest{Part: &catalogv1.UploadProductImageRequest_Chunk{Chunk: buf[:n]}})
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			stream.CloseSend()
			return nil, rerr
		}
	}
	// A send error means the server ended the stream: CloseAndRecv says why.
	return stream.CloseAndRecv()
}

// productFlags are the ProductDraft flags of create and update.
type productFlags struct {
	sku, name, description, category, currency string
	priceMinor                                 int64
	active                                     bool
}

func (f *productFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "name", "", "name shown to shoppers")
	cmd.Flags().StringVar(&f.description, "description", "", "longer description")
	cmd.Flags().StringVar(&f.category, "category", "general", "category slug (lower-case letters, digits, dashes)")
	cmd.Flags().Int64Var(&f.priceMinor, "price-minor", 0, "unit price in minor units (cents)")
	cmd.Flags().StringVar(&f.currency, "currency", "EUR", "ISO 4217 currency of the price")
	cmd.Flags().BoolVar(&f.active, "active", true, "whether the product can be ordered")
}

func (f *productFlags) draft() *catalogv1.ProductDraft {
	return &catalogv1.ProductDraft{
		Sku: f.sku, Name: f.name, Description: f.description, Category: f.category,
		Price: &commonv1.Money{CurrencyCode: f.currency, AmountMinor: f.priceMinor}, Active: f.active,
	}
}
