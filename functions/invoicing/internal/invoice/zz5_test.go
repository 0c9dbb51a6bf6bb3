package invoice

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestZZFirst(t *testing.T) {
	o := testOrder("ord_bench", "Espresso machine", "Milk frother", "Descaler (2 × 250 ml)")
	if os.Getenv("ZZ_CJK") != "" {
		o = testOrder("ord_bench", "Espresso machine", "咖啡机 除垢剂", "Descaler")
	}
	t0 := time.Now()
	if _, err := Render(o, testSeller, latinBuyer); err != nil { t.Fatal(err) }
	d1 := time.Since(t0)
	t0 = time.Now()
	if _, err := Render(o, testSeller, latinBuyer); err != nil { t.Fatal(err) }
	fmt.Printf("first %.1f second %.1f\n", d1.Seconds()*1000, time.Since(t0).Seconds()*1000)
}
