package feedback

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAddressPolicyDefault(t *testing.T) {
	var p AddressPolicy
	for _, tt := range []struct {
		url     string
		refused bool
	}{
		{"http://127.0.0.1/x", true},
		{"http://127.1:8080/x", true},
		{"http://2130706433/", true}, // 127.0.0.1 in decimal
		{"http://0x7f000001/", true}, // in hex
		{"http://0177.0.0.1/", true}, // in octal
		{"http://0x7f.1/", true},     // mixed
		{"http://169.254.169.254/latest/meta-data", true},
		{"http://10.0.0.1/", true},
		{"http://172.16.5.4/", true},
		{"http://192.168.1.1/", true},
		{"http://100.64.0.1/", true},
		{"http://0.0.0.0/", true},
		{"http://0/", true},
		{"http://[::1]/", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"http://[::ffff:a9fe:a9fe]/", true}, // 169.254.169.254 mapped
		{"http://[fe80::1%25eth0]/", true},
		{"http://[fd00::1]/", true},
		{"http://[::]/", true},
		{"http://224.0.0.1/", true},
		{"http://localhost:9000/", true},
		{"http://LOCALHOST./", true},
		{"http://api.localhost/", true},
		{"https://hooks.slack.com/services/T/B/x", false},
		{"https://crm.example.com/in", false},
		{"http://8.8.8.8/", false},
		{"http://[2606:4700::1111]/", false},
		{"http://1.2.3.4.example.com/", false},
		{"http://123.example/", false},
	} {
		err := p.CheckURL(tt.url)
		if (err != nil) != tt.refused {
			t.Errorf("CheckURL(%q) = %v, refused want %v", tt.url, err, tt.refused)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckURL(%q) = %v, want ErrInvalid", tt.url, err)
		}
	}
}

func TestAddressPolicyAllowRanges(t *testing.T) {
	p, err := ParseAddressPolicy([]string{"loopback", " 10.1.0.0/16 "})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "10.2.0.1": false,
		"169.254.169.254": false, "192.168.0.1": false, "8.8.8.8": true, "::ffff:127.0.0.1": true,
	} {
		if got := p.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	if _, err := ParseAddressPolicy([]string{"internal"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown range name: %v, want ErrInvalid", err)
	}
}
