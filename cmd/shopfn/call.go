package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/shopfn/shopfn/infra"
	"github.com/shopfn/shopfn/shared/dial"
)

func newCallCmd() *cobra.Command {
	var (
		addr, dataDir string
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "call /package.Service/Method",
		Short: "Call a method with an empty request and a service token (what the schedules run)",
		Long: `call invokes one gRPC method with an empty request, as the service
"scheduler" (internal methods answer only the callers infra/stack.yaml
lists): the token is signed with SHOPFN_JWT_SIGNING_KEY, or the development
key in --data-dir. It is how the schedules of infra/stack.yaml run (Cloud Run jobs
started by Cloud Scheduler, CronJobs on Kubernetes, timers under shopfn
dev), e.g.

    shopfn call --addr https://order-….run.app /shopfn.order.v1.OrderService/Resume

It prints the response as JSON and fails when the call fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				return fmt.Errorf("--addr is required")
			}
			creds, err := serviceCredentials(dataDir, infra.Scheduler)
			if err != nil {
				return err
			}
			cc, err := dial.Dial(addr, dial.Options{PerRPCCredentials: creds})
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			resp, err := invokeEmpty(ctx, cc, args[0])
			if err != nil {
				return err
			}
			return printProto(cmd.OutOrStdout(), resp)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "the deployable: host:port (plaintext) or https://host")
	cmd.Flags().StringVar(&dataDir, "data-dir", ".data", "where shopfn dev keeps its development key")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "deadline of the call")
	return cmd
}

// invokeEmpty calls method (/package.Service/Method) with an empty request
// of its input type and returns the response; both types come from the
// protos compiled into this binary.
func invokeEmpty(ctx context.Context, cc *grpc.ClientConn, method string) (proto.Message, error) {
	in, out, err := methodTypes(method)
	if err != nil {
		return nil, err
	}
	if err := cc.Invoke(ctx, method, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// methodTypes returns new empty input and output messages of a method.
func methodTypes(method string) (in, out proto.Message, err error) {
	service, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok || name == "" {
		return nil, nil, fmt.Errorf("method %q: want /package.Service/Method", method)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, nil, fmt.Errorf("method %q: no service %s in this binary", method, service)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("method %q: %s is not a service", method, service)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, nil, fmt.Errorf("method %q: %s has no method %s", method, service, name)
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, nil, fmt.Errorf("method %q streams; call takes unary methods", method)
	}
	mt := func(m protoreflect.MessageDescriptor) (proto.Message, error) {
		t, err := protoregistry.GlobalTypes.FindMessageByName(m.FullName())
		if err != nil {
			return nil, err
		}
		return t.New().Interface(), nil
	}
	if in, err = mt(md.Input()); err != nil {
		return nil, nil, err
	}
	if out, err = mt(md.Output()); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}
