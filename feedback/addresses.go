package feedback

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// AddressPolicy says which IP addresses alerts may be delivered to. By
// default only public unicast addresses are: a destination must not make
// Hotlane call into its own network (a cloud metadata service, a database,
// an admin port on localhost). Installations whose receivers are internal
// allow named ranges. The zero value is the default.
type AddressPolicy struct {
	allow []netip.Prefix
}

// AddressRanges names the ranges an AddressPolicy can allow besides CIDRs.
var AddressRanges = map[string][]netip.Prefix{
	"loopback": {netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	"private": {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fc00::/7")},
	"link-local": {netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")},
}

// blocked are the ranges refused unless allowed: the named ones, and
// addresses that are never a single receiver (unspecified, "this network",
// multicast, broadcast, reserved, documentation and benchmarking ranges).
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range AddressRanges {
		out = append(out, r...)
	}
	for _, p := range []string{"0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "::/128", "64:ff9b:1::/48", "2001:db8::/32", "ff00::/8"} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// ParseAddressPolicy builds a policy allowing the given ranges: names of
// AddressRanges or CIDRs such as 10.1.0.0/16.
func ParseAddressPolicy(ranges []string) (AddressPolicy, error) {
	var p AddressPolicy
	for _, r := range ranges {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if named, ok := AddressRanges[r]; ok {
			p.allow = append(p.allow, named...)
			continue
		}
		prefix, err := netip.ParsePrefix(r)
		if err != nil {
			return AddressPolicy{}, fmt.Errorf("%w: %q is not loopback, private, link-local or a CIDR such as 10.1.0.0/16", ErrInvalid, r)
		}
		p.allow = append(p.allow, prefix.Masked())
	}
	return p, nil
}

// Allowed reports whether alerts may be delivered to ip.
func (p AddressPolicy) Allowed(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return false
	}
	for _, a := range p.allow {
		if a.Contains(ip) {
			return true
		}
	}
	for _, b := range blocked {
		if b.Contains(ip) {
			return false
		}
	}
	return true
}

// CheckURL refuses a destination URL whose host is an address the policy
// does not allow, in any spelling (127.0.0.1, 2130706433, 0x7f.1,
// [::ffff:127.0.0.1]), or a name that always means this machine
// (localhost). Other names are checked when they are resolved, on every
// delivery. Its errors wrap ErrInvalid and start with "url: ".
func (p AddressPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url: not a URL", ErrInvalid)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	ip, isIP := hostAddress(host)
	if !isIP && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		ip, isIP = netip.MustParseAddr("127.0.0.1"), true
	}
	if isIP && !p.Allowed(ip) {
		return fmt.Errorf("%w: url: %s is a private, loopback, link-local or reserved address; alerts go to public addresses unless the server allows the range (--allow-destination-ranges)", ErrInvalid, ip)
	}
	return nil
}

// hostAddress parses a URL host as an IP address the way resolvers and
// HTTP clients may: IPv6 in brackets (Hostname strips them) or IPv4 in
// inet_aton's forms, where each of up to four parts is decimal, 0x hex or
// 0-prefixed octal and the last part fills the remaining bytes.
func hostAddress(host string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, part := range parts {
		base, digits := 10, part
		switch {
		case strings.HasPrefix(part, "0x"):
			base, digits = 16, part[2:]
		case len(part) > 1 && part[0] == '0':
			base, digits = 8, part[1:]
		}
		if digits == "" && base != 8 {
			return netip.Addr{}, false
		}
		if digits == "" {
			digits = "0"
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
