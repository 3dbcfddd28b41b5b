package doctor

import (
	"testing"

	"github.com/berth-dev/berth/internal/goenv"
)

var resolvSeeds = []string{
	"nameserver 10.0.0.2\nsearch a.test b.test\noptions ndots:5 timeout:2 attempts:3 rotate\n",
	"nameserver 127.0.0.11\noptions ndots:0\n# ExtServers: [host(192.168.65.7)]\n",
	"domain x\nnameserver ::1\nnameserver 1.1.1.1 extra\noptions inet6 single-request-reopen use-vc\n",
	"options ndots:99999999999999 timeout:-1 attempts:\n", "\x00\n\r\n;;;", "search . . .\n",
}

func FuzzParseResolvConf(f *testing.F) {
	for _, s := range resolvSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rc := ParseResolvConf(b)
		if len(rc.Nameservers) == 0 || len(rc.Nameservers) > 3 {
			t.Fatalf("%d nameservers", len(rc.Nameservers))
		}
		if rc.Ndots < 0 || rc.Ndots > 15 || rc.Attempts < 1 || rc.Timeout <= 0 {
			t.Fatalf("out of range: %+v", rc)
		}
		for _, n := range rc.NameList("a.b.example.test") {
			if n == "" || n[len(n)-1] != '.' {
				t.Fatalf("name %q not rooted", n)
			}
		}
	})
}

func FuzzParseNSSwitch(f *testing.F) {
	for _, s := range []string{"hosts: files dns\n", "hosts: files mdns4_minimal [NOTFOUND=return] dns\n", "hosts: dns [!UNAVAIL=return files\n", "hosts:\n", "hosts files dns"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ns := ParseNSSwitch(b)
		switch ns.Order {
		case "files,dns", "dns,files", "files", "dns":
		default:
			t.Fatalf("order %q", ns.Order)
		}
	})
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"127.0.0.1 localhost\n::1 localhost ip6-localhost\n", "10.0.0.1\n#x\nbad host\n", "fe80::1%eth0 link\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		es, _ := ParseHosts(b)
		if len(es) > 1024 {
			t.Fatalf("%d entries", len(es))
		}
	})
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A 0\n"))
	f.Add([]byte("   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A\n"))
	f.Add([]byte("   0: ZZ:1F90 x 0A\n   1: 0100007F:1F9 x 0A\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, _ := ParseProcNetTCP(b)
		for _, l := range ls {
			if l.Port < 0 || l.Port > 65535 {
				t.Fatalf("port %d", l.Port)
			}
		}
	})
}

func FuzzParseProcNetRoute(f *testing.F) {
	f.Add([]byte("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0100D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"))
	f.Add([]byte("00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseProcNetRoute(b)
		ParseProcNetIPv6Route(b)
		ParseCPUMax(b)
		ParseMemMax(b)
	})
}

func FuzzGoEnv(f *testing.F) {
	f.Add("https://a.test,https://b.test|direct", "sum.golang.org+key https://x", "module a\nrequire (\n b v1\n)\n")
	f.Add("off", "off", "")
	f.Fuzz(func(t *testing.T, goproxy, gosumdb, gomod string) {
		goProxies(goproxy)
		goenv.ParseSumDB(gosumdb)
		for _, m := range goModPaths([]byte(gomod)) {
			looksPrivate(m)
		}
		parseProxyValue(goproxy)
	})
}
