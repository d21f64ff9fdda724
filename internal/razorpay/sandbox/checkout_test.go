package sandbox_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

// checkoutRig serves the checkout page at the root, as the binary mounts it.
func checkoutRig(t *testing.T) (*sandbox.Emulator, client, *httptest.Server, *http.Client) {
	t.Helper()
	emu, c := start(t, sandbox.Config{})
	srv := httptest.NewServer(emu.CheckoutHandler())
	t.Cleanup(srv.Close)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return emu, c, srv, noFollow
}

func get(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRE = regexp.MustCompile(`name="token" value="([0-9a-f]+)"`)

func TestCheckoutPage(t *testing.T) {
	t.Parallel()
	emu, c, srv, hc := checkoutRig(t)
	id := createOrder(t, c, `<script>alert(1)</script>`)
	status, page := get(t, hc, srv.URL+sandbox.CheckoutPath(id))
	if status != http.StatusOK || !strings.Contains(page, "Sandbox — no real money moves") || !strings.Contains(page, "500.00 INR") {
		t.Fatalf("page %d:\n%s", status, page)
	}
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("receipt not escaped:\n%s", page)
	}
	if status, _ := get(t, hc, srv.URL+sandbox.CheckoutPath("order_00000000000000")); status != http.StatusNotFound {
		t.Errorf("unknown order: %d", status)
	}
	for _, bad := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/a\nb"} {
		if status, _ := get(t, hc, srv.URL+sandbox.CheckoutPath(id)+"?return="+url.QueryEscape(bad)); status != http.StatusBadRequest {
			t.Errorf("return %q: %d", bad, status)
		}
	}
	if emu.PaymentCount() != 0 {
		t.Errorf("a page view paid")
	}
}

func TestCheckoutPay(t *testing.T) {
	t.Parallel()
	emu, c, srv, hc := checkoutRig(t)
	id := createOrder(t, c, "r")
	_, page := get(t, hc, srv.URL+sandbox.CheckoutPath(id)+"?return=/appointments/a-1?tab=pay")
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token:\n%s", page)
	}
	post := func(action string, form url.Values) *http.Response {
		t.Helper()
		resp, err := hc.PostForm(srv.URL+sandbox.CheckoutPath(id)+"/"+action, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("pay", url.Values{"return": {"/x"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("without the token: %d", resp.StatusCode)
	}
	if resp := post("pay", url.Values{"token": {m[1]}, "return": {"//evil.example"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("open redirect: %d", resp.StatusCode)
	}
	if emu.PaymentCount() != 0 {
		t.Fatal("a refused form paid")
	}
	resp := post("pay", url.Values{"token": {m[1]}, "return": {"/appointments/a-1?tab=pay"}})
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Host != "" || loc.Path != "/appointments/a-1" {
		t.Fatalf("pay: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("tab") != "pay" || q.Get("razorpay_order_id") != id ||
		q.Get("razorpay_signature") != emu.CheckoutSignature(id, q.Get("razorpay_payment_id")) {
		t.Errorf("return query %v", q)
	}
	if resp := post("pay", url.Values{"token": {m[1]}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("paying a paid order: %d", resp.StatusCode)
	}
}

func TestCheckoutFailAndNoReturn(t *testing.T) {
	t.Parallel()
	emu, c, srv, hc := checkoutRig(t)
	id := createOrder(t, c, "r")
	token := tokenRE.FindStringSubmatch(func() string { _, p := get(t, hc, srv.URL+sandbox.CheckoutPath(id)); return p }())[1]
	resp, err := hc.PostForm(srv.URL+sandbox.CheckoutPath(id)+"/fail", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Payment failed") {
		t.Fatalf("fail: %d\n%s", resp.StatusCode, b)
	}
	resp, err = hc.PostForm(srv.URL+sandbox.CheckoutPath(id)+"/pay", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `id="razorpay_signature"`) || emu.PaymentCount() != 2 {
		t.Fatalf("pay after a failure: %d\n%s", resp.StatusCode, b)
	}
}
