package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/dial"
)

// demoCategory holds the demo's products, so that it finds them again.
const demoCategory = "demo"

// demoCatalog is the small catalog the demo imports (upserted by SKU, so a
// second run changes nothing).
var demoCatalog = []*catalogv1.ProductDraft{
	{Sku: "demo-mug", Name: "Enamel mug", Description: "A mug for the campfire; 350 ml.", Category: demoCategory, Price: eur(1250), Active: true},
	{Sku: "demo-tee", Name: "Organic tee — Zoë edition", Description: "Cotton t-shirt, printed in Lyon.", Category: demoCategory, Price: eur(2400), Active: true},
	{Sku: "demo-tea", Name: "Sencha 煎茶 100 g", Description: "Green tea from Shizuoka.", Category: demoCategory, Price: eur(890), Active: true},
	{Sku: "demo-map", Name: "Trail map", Description: "Waterproof hiking map.", Category: demoCategory, Price: eur(1100), Active: true},
}

// demoServices are the deployables the demo calls.
var demoServices = []string{"user", "catalog", "inventory", "order", "support"}

// cloudRunAddrs turns https://PROJECT_NUMBER.REGION.run.app into each demo
// service's deterministic Cloud Run URL, https://NAME-PROJECT_NUMBER.REGION.run.app.
func cloudRunAddrs(target string) (map[string]string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("--target %q: want https://PROJECT_NUMBER.REGION.run.app", target)
	}
	addrs := map[string]string{}
	for _, name := range demoServices {
		addrs[name] = "https://" + name + "-" + u.Host
	}
	return addrs, nil
}

func eur(minor int64) *commonv1.Money {
	return &commonv1.Money{AmountMinor: minor, CurrencyCode: "EUR"}
}

// demo runs the flow; each step prints a line.
type demo struct {
	out     io.Writer
	addrs   map[string]string
	dataDir string
	timeout time.Duration

	adminEmail, adminPassword string
	admin, customer           context.Context // carrying their tokens
	adminToken, customerToken string
	products                  map[string]*catalogv1.Product
	order                     *orderv1.Order
}

func newDemoCmd() *cobra.Command {
	d := &demo{addrs: map[string]string{}}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Walk through the whole shop against a running shopfn dev",
		Long: `demo drives every part of a running shopfn dev, printing each step:
it imports a small catalog (a BulkImportProducts stream), stocks it,
uploads a product image, registers and logs in a customer, places an
order and follows it live to CONFIRMED, waits for the invoicing function
to attach the invoice PDF and the imaging function to make the image
variants, and exchanges chat messages between the customer and an agent.
It exits non-zero when a step fails.

The admin account is --admin-email (shopfn dev makes it an admin when it
registers); the demo registers it on first use with --admin-password.
Services are at the ports of shopfn dev unless SHOPFN_<SERVICE>_ADDR says
otherwise, or --target names a Cloud Run deployment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d.out = cmd.OutOrStdout()
			return d.run(cmd.Context())
		},
	}
	for _, name := range demoServices {
		d.addrs[name] = envOr("SHOPFN_"+strings.ToUpper(name)+"_ADDR", defaultAddr(name))
	}
	var target string
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if target == "" {
			return nil
		}
		addrs, err := cloudRunAddrs(target)
		if err != nil {
			return err
		}
		d.addrs = addrs
		return nil
	}
	cmd.Flags().StringVar(&target, "target", "", "a Cloud Run deployment: https://PROJECT_NUMBER.REGION.run.app (terraform output demo_target); each service is then https://NAME-PROJECT_NUMBER.REGION.run.app")
	cmd.Flags().StringVar(&d.adminEmail, "admin-email", "admin@shopfn.local", "the admin account")
	cmd.Flags().StringVar(&d.adminPassword, "admin-password", envOr("SHOPFN_ADMIN_PASSWORD", devAdminPassword), "its password ($SHOPFN_ADMIN_PASSWORD)")
	cmd.Flags().StringVar(&d.dataDir, "data-dir", ".data", "the data directory of shopfn dev, to show where files landed")
	cmd.Flags().DurationVar(&d.timeout, "timeout", 60*time.Second, "how long to wait for the functions")
	return cmd
}

func (d *demo) run(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"log in as the admin", d.logInAdmin},
		{"import the catalog (BulkImportProducts stream)", d.importCatalog},
		{"stock the products", d.stock},
		{"upload a product image (UploadProductImage stream)", d.uploadImage},
		{"register and log in a customer", d.logInCustomer},
		{"place an order and watch it (WatchOrder stream)", d.placeOrder},
		{"wait for the invoice (invoicing function)", d.waitInvoice},
		{"wait for the image variants (imaging function)", d.waitVariants},
		{"chat about the order (Chat stream)", d.chat},
	}
	start := time.Now()
	for i, s := range steps {
		fmt.Fprintf(d.out, "[%d/%d] %s …\n", i+1, len(steps), s.name)
		t := time.Now()
		detail, err := s.fn(ctx)
		if err != nil {
			fmt.Fprintf(d.out, "      ✗ failed after %s: %s\n", since(t), explain(err))
			return fmt.Errorf("demo step %q failed", s.name)
		}
		fmt.Fprintf(d.out, "      ✓ %s (%s)\n", detail, since(t))
	}
	fmt.Fprintf(d.out, "\nThe whole flow worked, in %s.\n", since(start))
	return nil
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// login registers the account if it is new, then logs in.
func (d *demo) login(ctx context.Context, email, password, name string) (context.Context, string, string, error) {
	var token, id string
	err := withUser(d.addrs["user"], func(c userv1.UserServiceClient) error {
		_, err := c.Register(ctx, &userv1.RegisterRequest{Email: email, Password: password, DisplayName: name})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return err
		}
		resp, err := c.Login(ctx, &userv1.LoginRequest{Email: email, Password: password})
		if err != nil {
			return err
		}
		token, id = resp.GetAccessToken(), resp.GetUser().GetId()
		return nil
	})
	return auth.WithBearer(ctx, token), token, id, err
}

func (d *demo) logInAdmin(ctx context.Context) (string, error) {
	admin, token, id, err := d.login(ctx, d.adminEmail, d.adminPassword, "Demo admin")
	if status.Code(err) == codes.Unauthenticated {
		return "", fmt.Errorf("%s exists with another password: pass --admin-password, or restart shopfn dev with --reset: %w", d.adminEmail, err)
	}
	d.admin, d.adminToken = admin, token
	return "admin " + id, err
}

func (d *demo) importCatalog(ctx context.Context) (string, error) {
	var resp *catalogv1.BulkImportProductsResponse
	err := withCatalog(d.addrs["catalog"], func(c catalogv1.CatalogServiceClient) error {
		stream, err := c.BulkImportProducts(d.admin)
		if err != nil {
			return err
		}
		for _, p := range demoCatalog {
			if err := stream.Send(&catalogv1.BulkImportProductsRequest{Product: p}); err != nil {
				break // CloseAndRecv says why
			}
		}
		if resp, err = stream.CloseAndRecv(); err != nil {
			return err
		}
		if len(resp.GetErrors()) > 0 {
			return fmt.Errorf("import refused %d item(s): %v", len(resp.GetErrors()), resp.GetErrors()[0])
		}
		list, err := c.ListProducts(ctx, &catalogv1.ListProductsRequest{Category: demoCategory, PageSize: 100})
		if err != nil {
			return err
		}
		d.products = map[string]*catalogv1.Product{}
		for _, p := range list.GetProducts() {
			d.products[p.GetSku()] = p
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(d.products) < len(demoCatalog) {
		return "", fmt.Errorf("listed %d demo products after the import, want %d", len(d.products), len(demoCatalog))
	}
	return fmt.Sprintf("%d products: %d created, %d updated, %d unchanged", resp.GetReceived(), resp.GetCreated(), resp.GetUpdated(), resp.GetUnchanged()), nil
}

// demoStock is what every demo product gets on hand: plenty for repeated
// runs.
const demoStock = 1000

func (d *demo) stock(context.Context) (string, error) {
	err := withInventory(d.addrs["inventory"], nil, func(c inventoryv1.InventoryServiceClient) error {
		for _, p := range demoCatalog {
			if _, err := c.SetStock(d.admin, &inventoryv1.SetStockRequest{Sku: p.GetSku(), OnHand: demoStock}); err != nil {
				return err
			}
		}
		return nil
	})
	return fmt.Sprintf("%d units of each SKU on hand", demoStock), err
}

func (d *demo) uploadImage(context.Context) (string, error) {
	jpg, err := demoImage()
	if err != nil {
		return "", err
	}
	p := d.products["demo-mug"]
	var resp *catalogv1.UploadProductImageResponse
	err = withCatalog(d.addrs["catalog"], func(c catalogv1.CatalogServiceClient) error {
		resp, err = uploadImage(d.admin, c, p.GetId(), "mug.jpg", bytes.NewReader(jpg))
		return err
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d KB JPEG as image %.12s… of %s", len(jpg)/1024, resp.GetImage().GetImageId(), p.GetId()), nil
}

// demoImage draws a 2400×1600 photo-sized JPEG: gradients and rings, no
// file needed.
func demoImage() ([]byte, error) {
	const w, h = 2400, 1600
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			dx, dy := x-w/2, y-h/2
			ring := uint8((dx*dx + dy*dy) / 900 % 256)
			img.SetRGBA(x, y, color.RGBA{R: uint8(x * 255 / w), G: ring, B: uint8(y * 255 / h), A: 255})
		}
	}
	var b bytes.Buffer
	err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85})
	return b.Bytes(), err
}

func (d *demo) logInCustomer(ctx context.Context) (string, error) {
	email := "demo-" + rand.Text()[:8] + "@shopfn.local"
	customer, token, id, err := d.login(ctx, email, "demo-customer-password", "Zoë Ñandú")
	d.customer, d.customerToken = customer, token
	return fmt.Sprintf("%s (%s)", email, id), err
}

func (d *demo) placeOrder(context.Context) (string, error) {
	req := &orderv1.CreateOrderRequest{
		IdempotencyKey: "demo-" + rand.Text(),
		Lines: []*orderv1.LineItem{
			{ProductId: d.products["demo-mug"].GetId(), Quantity: 2},
			{ProductId: d.products["demo-tea"].GetId(), Quantity: 1},
		},
		ShippingAddress: &commonv1.Address{Name: "Zoë Ñandú", Line1: "12 rue des Lilas", City: "Lyon", PostalCode: "69001", CountryCode: "FR"},
		PaymentToken:    "tok_visa",
	}
	err := withOrders(d.addrs["order"], func(c orderv1.OrderServiceClient) error {
		resp, err := c.CreateOrder(d.customer, req)
		if err != nil {
			return err
		}
		d.order = resp.GetOrder()
		var states bytes.Buffer
		if err := watchOrder(d.customer, c, d.order.GetId(), &states); err != nil {
			return err
		}
		for line := range bytes.Lines(states.Bytes()) {
			fmt.Fprintf(d.out, "      %s", line)
		}
		got, err := c.GetOrder(d.customer, &orderv1.GetOrderRequest{OrderId: d.order.GetId()})
		if err != nil {
			return err
		}
		d.order = got.GetOrder()
		return nil
	})
	if err != nil {
		return "", err
	}
	if d.order.GetState() != orderv1.OrderState_ORDER_STATE_CONFIRMED {
		return "", fmt.Errorf("order %s ended %s: %s %s", d.order.GetId(), d.order.GetState(), d.order.GetCancelReason(), d.order.GetCancelMessage())
	}
	return fmt.Sprintf("order %s CONFIRMED, total %s", d.order.GetId(), formatMoney(d.order.GetTotal())), nil
}

// poll calls f every pollEvery until it reports done, fails, or the demo's
// timeout passes.
func (d *demo) poll(ctx context.Context, what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	const pollEvery = 100 * time.Millisecond
	for {
		done, err := f()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no %s after %s (is the function running? see the shopfn dev log)", what, d.timeout)
		case <-time.After(pollEvery):
		}
	}
}

func (d *demo) waitInvoice(ctx context.Context) (string, error) {
	var inv *orderv1.Invoice
	err := withOrders(d.addrs["order"], func(c orderv1.OrderServiceClient) error {
		return d.poll(ctx, "invoice", func() (bool, error) {
			resp, err := c.GetOrder(d.customer, &orderv1.GetOrderRequest{OrderId: d.order.GetId()})
			inv = resp.GetOrder().GetInvoice()
			return inv != nil, err
		})
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("invoice %s at %s", inv.GetNumber(), d.where("invoices", inv.GetObject())), nil
}

func (d *demo) waitVariants(ctx context.Context) (string, error) {
	var im *catalogv1.ProductImage
	err := withCatalog(d.addrs["catalog"], func(c catalogv1.CatalogServiceClient) error {
		return d.poll(ctx, "image variants", func() (bool, error) {
			resp, err := c.GetProduct(d.customer, &catalogv1.GetProductRequest{ProductId: d.products["demo-mug"].GetId()})
			if err != nil {
				return false, err
			}
			images := resp.GetProduct().GetImages()
			im = images[len(images)-1]
			switch im.GetState() {
			case catalogv1.ImageState_IMAGE_STATE_READY:
				return true, nil
			case catalogv1.ImageState_IMAGE_STATE_FAILED:
				return false, fmt.Errorf("imaging failed: %s", im.GetFailure())
			}
			return false, nil
		})
	})
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	for _, v := range im.GetVariants() {
		fmt.Fprintf(&b, "\n        %-12s %4d×%-4d %s", v.GetName(), v.GetWidth(), v.GetHeight(), d.where("catalog-images", v.GetObject()))
	}
	return fmt.Sprintf("%d variants:%s", len(im.GetVariants()), b.String()), nil
}

// where shows a bucket object as a local file when shopfn dev keeps it in
// its data directory, else as the object name.
func (d *demo) where(bucketDir, object string) string {
	p := filepath.Join(d.dataDir, bucketDir, filepath.FromSlash(object))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return object
}

func (d *demo) chat(ctx context.Context) (string, error) {
	room := "order:" + d.order.GetId()
	var got []string
	err := withClient(d.addrs["support"], dial.Options{}, supportv1.NewSupportServiceClient, func(c supportv1.SupportServiceClient) error {
		ctx, cancel := context.WithTimeout(ctx, d.timeout)
		defer cancel()
		customer, err := joinRoom(auth.WithBearer(ctx, d.customerToken), c, room)
		if err != nil {
			return err
		}
		defer customer.CloseSend()
		agent, err := joinRoom(auth.WithBearer(ctx, d.adminToken), c, room)
		if err != nil {
			return err
		}
		defer agent.CloseSend()
		exchange := []struct {
			from supportv1.SupportService_ChatClient
			text string
		}{
			{customer, "Hi! Can the mug ship before Friday?"},
			{agent, "Yes — it leaves the warehouse tomorrow. 🚚"},
		}
		for _, m := range exchange {
			if err := m.from.Send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: m.text, ClientMessageId: rand.Text()}}}); err != nil {
				return err
			}
			// Both participants see every message; the customer's view is printed.
			msg, err := nextMessage(customer)
			if err != nil {
				return err
			}
			if _, err := nextMessage(agent); err != nil {
				return err
			}
			line := fmt.Sprintf("#%d %s: %s", msg.GetSeq(), msg.GetAuthorName(), msg.GetText())
			fmt.Fprintf(d.out, "      %s\n", line)
			got = append(got, line)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d messages in %s", len(got), room), nil
}

func joinRoom(ctx context.Context, c supportv1.SupportServiceClient, room string) (supportv1.SupportService_ChatClient, error) {
	stream, err := c.Chat(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: &supportv1.JoinRoom{RoomId: room}}}); err != nil {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if resp.GetJoined() == nil {
		return nil, errors.New("chat: no Joined after joining")
	}
	return stream, nil
}

func nextMessage(s supportv1.SupportService_ChatClient) (*supportv1.ChatMessage, error) {
	for {
		resp, err := s.Recv()
		if err != nil {
			return nil, err
		}
		if m := resp.GetMessage(); m != nil {
			return m, nil
		}
	}
}
