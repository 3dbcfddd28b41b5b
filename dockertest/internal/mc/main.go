// Command mc stands in for MinIO's client in the Docker suite's MinIO image,
// which is built FROM scratch from a host-built MinIO because no image can be
// pulled here. It implements only what examples/replicas/compose.yaml runs,
// with mc's arguments, aliases and exit codes:
//
//	mc ready ALIAS                       # exit 0 once the server is ready
//	mc mb [--ignore-existing] ALIAS/BUCKET
//
// An alias is read from MC_HOST_<ALIAS>=http://ACCESS:SECRET@HOST:PORT, as
// mc reads it; "local" defaults to http://localhost:9000, as in MinIO's image.
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mc ready ALIAS | mc mb [--ignore-existing] ALIAS/BUCKET")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch args[0] {
	case "ready":
		if len(args) != 2 {
			return fmt.Errorf("usage: mc ready ALIAS")
		}
		u, err := alias(args[1])
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+"/minio/health/ready", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", req.URL, resp.Status)
		}
		fmt.Printf("The cluster '%s' is ready\n", args[1])
		return nil
	case "mb":
		ignore := false
		var target string
		for _, a := range args[1:] {
			switch {
			case a == "--ignore-existing" || a == "-p":
				ignore = true
			case strings.HasPrefix(a, "-"):
				return fmt.Errorf("mb: unknown flag %s", a)
			case target == "":
				target = a
			default:
				return fmt.Errorf("usage: mc mb [--ignore-existing] ALIAS/BUCKET")
			}
		}
		name, bucket, ok := strings.Cut(target, "/")
		if !ok || bucket == "" {
			return fmt.Errorf("mb: %q: want ALIAS/BUCKET", target)
		}
		u, err := alias(name)
		if err != nil {
			return err
		}
		secret, _ := u.User.Password()
		c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(u.User.Username(), secret, ""),
			Secure: u.Scheme == "https", BucketLookup: minio.BucketLookupPath})
		if err != nil {
			return err
		}
		err = c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
		if err != nil {
			code := minio.ToErrorResponse(err).Code
			if !ignore || (code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists") {
				return fmt.Errorf("mb %s: %w", target, err)
			}
		}
		fmt.Printf("Bucket created successfully `%s`.\n", target)
		return nil
	}
	return fmt.Errorf("%s: not implemented by this stand-in (only ready and mb)", args[0])
}

// alias returns the URL of an mc alias.
func alias(name string) (*url.URL, error) {
	v := os.Getenv("MC_HOST_" + name)
	if v == "" {
		if name != "local" {
			return nil, fmt.Errorf("alias %s: MC_HOST_%s is not set", name, name)
		}
		v = "http://localhost:9000"
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("MC_HOST_%s: want http://ACCESS:SECRET@HOST:PORT", name)
	}
	return u, nil
}
