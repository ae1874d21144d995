// apicheck: the test bed's FROM-scratch probe image. Every few seconds it calls the API server the way an
// in-cluster client does (KUBERNETES_SERVICE_HOST/PORT, the projected service-account token and CA) and logs
// the result; it serves that result on :8080 so a Service in front of it exercises service routing.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

var (
	mu   sync.Mutex
	last = "no attempt yet"
)

func probe() string {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" {
		return "KUBERNETES_SERVICE_HOST is not set"
	}
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return "no CA: " + err.Error()
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return "no token: " + err.Error()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	path := "/api/v1/namespaces/" + namespace() + "/pods"
	if p := os.Getenv("APICHECK_PATH"); p != "" {
		path = p
	}
	req, _ := http.NewRequest("GET", "https://"+net.JoinHostPort(host, port)+path, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Sprintf("GET %s -> %s %s", path, resp.Status, strings.ReplaceAll(string(body), "\n", " "))
}

func namespace() string {
	ns, err := os.ReadFile(saDir + "/namespace")
	if err != nil {
		return "default"
	}
	return strings.TrimSpace(string(ns))
}

func main() {
	go func() {
		for {
			r := probe()
			log.Print(r)
			mu.Lock()
			last = r
			mu.Unlock()
			time.Sleep(5 * time.Second)
		}
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		name, _ := os.Hostname()
		fmt.Fprintf(w, "%s: %s\n", name, last)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
