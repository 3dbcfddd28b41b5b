//go:build windows

package doctor

import (
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// platformFacts gathers the Windows facts: interfaces, the runtime's
// limits, the adapters as GetAdaptersAddresses reports them, the proxy
// settings of WinINet and WinHTTP, and the certificate store.
func platformFacts(f *Facts, _ *reader, o *Options) {
	f.Interfaces = interfaces()
	f.Limits = limitFacts(o)
	w := &WindowsFacts{Resolver: "native (GetAddrInfoW)"}
	if strings.Contains(o.getenv("GODEBUG"), "netdns=go") {
		w.Resolver = "go"
	}
	w.Adapters = adapters()
	for _, a := range w.Adapters {
		if a.Up && len(a.Gateways) > 0 {
			f.DefaultRoute = true
		}
	}
	if !f.DefaultRoute {
		for _, i := range f.Interfaces {
			if i.Up && !i.Loopback && len(i.Addrs) > 0 {
				f.DefaultRoute = true // no gateway reported; assume one (wine reports none)
			}
		}
	}
	w.WinINetProxy, w.WinINetAutoConfig = winINetProxy()
	w.WinHTTPProxy = winHTTPProxy()
	w.RootStore, w.RootStoreError = rootStoreCount()
	f.Windows = w
}

// platformDNS fills the DNS configuration Go's resolver uses on Windows
// (dnsconfig_windows.go): the DNS servers of the adapters that are up, from
// GetAdaptersAddresses (site-local fec0::/10 skipped), ndots:1, 5 s, 2
// attempts, no search list; and the hosts file under %SystemRoot%.
func platformDNS(f *Facts, r *reader, o *Options) bool {
	rc := ResolvConf{Ndots: 1, Timeout: 5 * time.Second, Attempts: 2, Search: []string{}}
	for _, a := range f.Windows.Adapters {
		if !a.Up {
			continue
		}
		for _, s := range a.DNSServers {
			if ap, err := netip.ParseAddr(s); err == nil && !netip.MustParsePrefix("fec0::/10").Contains(ap) {
				rc.Nameservers = appendUniq(rc.Nameservers, netip.AddrPortFrom(ap, 53).String())
			}
		}
	}
	if len(rc.Nameservers) == 0 {
		rc.Nameservers, rc.Defaulted = []string{"127.0.0.1:53", "[::1]:53"}, true
	}
	f.ResolvConf, f.ResolvConfRead = rc, "GetAdaptersAddresses"
	f.NSSwitch = NSSwitch{Order: "files,dns"}
	root := o.getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	f.Windows.HostsFile = filepath.Join(root, "System32", "drivers", "etc", "hosts")
	if data, _, err := r.read(f.Windows.HostsFile); err == nil {
		f.Hosts, f.HostsSkipped = ParseHosts(data)
	}
	f.Resolver = ResolverFact{Mode: "native", Order: "files,dns", GODEBUG: o.getenv("GODEBUG")}
	if f.Windows.Resolver == "go" {
		f.Resolver.Mode = "go"
	}
	return true
}

// platformRoots: crypto/x509 on Windows verifies with the system
// (CertGetCertificateChain against the certificate store) and ignores
// SSL_CERT_FILE and the Unix CA files, so the pool is nil, which makes the
// probes use the system verifier too.
func platformRoots(o *Options) (CAFacts, *x509.CertPool, bool) {
	n, _ := rootStoreCount()
	return CAFacts{System: "windows", Loaded: n, SSLCertFile: o.getenv("SSL_CERT_FILE"), Files: []CAFile{}, Dirs: []CAFile{}}, nil, true
}

func adapters() []WinAdapter {
	size := uint32(16 << 10)
	var buf []byte
	for range 3 {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC, windows.GAA_FLAG_INCLUDE_PREFIX|windows.GAA_FLAG_INCLUDE_GATEWAYS, 0,
			(*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if err != windows.ERROR_BUFFER_OVERFLOW {
			return nil
		}
	}
	var out []WinAdapter
	for a := (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])); a != nil && len(out) < 32; a = a.Next {
		wa := WinAdapter{Name: windows.UTF16PtrToString(a.FriendlyName), Up: a.OperStatus == windows.IfOperStatusUp,
			DNSSuffix: windows.UTF16PtrToString(a.DnsSuffix)}
		for d := a.FirstDnsServerAddress; d != nil && len(wa.DNSServers) < 8; d = d.Next {
			if ip := d.Address.IP(); ip != nil {
				wa.DNSServers = append(wa.DNSServers, ip.String())
			}
		}
		for g := a.FirstGatewayAddress; g != nil && len(wa.Gateways) < 4; g = g.Next {
			if ip := g.Address.IP(); ip != nil {
				wa.Gateways = append(wa.Gateways, ip.String())
			}
		}
		out = append(out, wa)
	}
	return out
}

// winINetProxy reads the per-user Internet Options proxy (what browsers
// and WinINet use).
func winINetProxy() (proxy, autoConfig string) {
	k, err := registry.OpenKey(registry.CURRENT_USER, `Software\Microsoft\Windows\CurrentVersion\Internet Settings`, registry.QUERY_VALUE)
	if err != nil {
		return "", ""
	}
	defer k.Close()
	if on, _, err := k.GetIntegerValue("ProxyEnable"); err == nil && on != 0 {
		proxy, _, _ = k.GetStringValue("ProxyServer")
	}
	autoConfig, _, _ = k.GetStringValue("AutoConfigURL")
	return clip(proxy, 200), clip(autoConfig, 200)
}

// winHTTPProxy reads the machine-wide WinHTTP proxy (netsh winhttp set
// proxy): the WinHttpSettings value, a 12-byte header whose third word has
// bit 2 set for a named proxy, then a length-prefixed proxy list.
func winHTTPProxy() string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections`, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	b, _, err := k.GetBinaryValue("WinHttpSettings")
	if err != nil || len(b) < 16 {
		return ""
	}
	if binary.LittleEndian.Uint32(b[8:])&2 == 0 {
		return ""
	}
	n := int(binary.LittleEndian.Uint32(b[12:]))
	if n <= 0 || 16+n > len(b) {
		return ""
	}
	return clip(string(b[16:16+n]), 200)
}

// rootStoreCount counts the certificates of the local ROOT store.
func rootStoreCount() (int, string) {
	name, _ := windows.UTF16PtrFromString("ROOT")
	st, err := windows.CertOpenSystemStore(0, name)
	if err != nil {
		return 0, fmt.Sprintf("CertOpenSystemStore(ROOT): %v", err)
	}
	defer windows.CertCloseStore(st, 0)
	n := 0
	var c *windows.CertContext
	for n < 100000 {
		c, err = windows.CertEnumCertificatesInStore(st, c)
		if err != nil || c == nil {
			break
		}
		n++
	}
	return n, ""
}
