package zzprobe

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	benchv1 "github.com/shopfn/shopfn/proto/shopfn/bench/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
)

func TestPhases(t *testing.T) {
	bin := os.Getenv("BIN")
	token := os.Getenv("TOKEN")
	uid := os.Getenv("USERID")
	phases := map[string][]float64{}
	for i := 0; i < 21; i++ {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "PORT=9070")
		cmd.Dir = os.Getenv("DIR")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		t0 := time.Now().UnixNano()
		cmd.Start()
		for {
			c, err := net.Dial("tcp", "127.0.0.1:9070")
			if err == nil { c.Close(); break }
			time.Sleep(100 * time.Microsecond)
		}
		tl := time.Now().UnixNano()
		cc, _ := grpc.NewClient("127.0.0.1:9070", grpc.WithTransportCredentials(insecure.NewCredentials()))
		ctx := context.Background()
		var err error
		if uid != "" {
			_, err = userv1.NewUserServiceClient(cc).GetUser(auth.WithBearer(ctx, token), &userv1.GetUserRequest{UserId: uid})
		} else {
			_, err = benchv1.NewEchoServiceClient(cc).Echo(ctx, &benchv1.EchoRequest{Message: "x"})
		}
		tf := time.Now().UnixNano()
		cc.Close()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if err != nil { t.Fatal(err, errb.String()) }
		phases["listen"] = append(phases["listen"], float64(tl-t0)/1e6)
		phases["first"] = append(phases["first"], float64(tf-t0)/1e6)
		for _, l := range strings.Split(errb.String(), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 {
				if v, err := strconv.ParseInt(f[1], 10, 64); err == nil && v > 1e18 {
					phases[f[0]] = append(phases[f[0]], float64(v-t0)/1e6)
				}
			}
		}
	}
	var keys []string
	for k := range phases { keys = append(keys, k) }
	sort.Slice(keys, func(i, j int) bool { a, b := phases[keys[i]], phases[keys[j]]; sort.Float64s(a); sort.Float64s(b); return a[len(a)/2] < b[len(b)/2] })
	for _, k := range keys { v := phases[k]; sort.Float64s(v); fmt.Printf("%s=%.2f ", k, v[len(v)/2]) }
	fmt.Println()
}
