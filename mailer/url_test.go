package mailer

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want Config
	}{
		{"smtp://user:p%40ss@mail.example:2525?tls=none&concurrency=4&rate=100&timeout=5s&helo=promo.example",
			Config{Kind: "smtp", SMTP: SMTPConfig{Host: "mail.example", Port: 2525, TLS: "none", Username: "user", Password: "p@ss",
				Concurrency: 4, Rate: 100, Timeout: 5 * time.Second, LocalName: "promo.example"}}},
		{"smtp://mail.example", Config{Kind: "smtp", SMTP: SMTPConfig{Host: "mail.example"}}},
		{"smtps://u:p@mail.example?rate=0.5", Config{Kind: "smtp", SMTP: SMTPConfig{Host: "mail.example", TLS: "tls", Username: "u", Password: "p", Rate: 0.5}}},
		{"webhook+https://sender.example/v1/send?timeout=10s&retries=3&backoff=1s&token=abc&tenant=7",
			Config{Kind: "webhook", Webhook: WebhookConfig{URL: "https://sender.example/v1/send?tenant=7", Timeout: 10 * time.Second, Retries: 3, Backoff: time.Second, Token: "abc"}}},
		{"https://sender.example/send?retries=0", Config{Kind: "webhook", Webhook: WebhookConfig{URL: "https://sender.example/send", Retries: -1}}},
		{"webhook+http://127.0.0.1:8080/send", Config{Kind: "webhook", Webhook: WebhookConfig{URL: "http://127.0.0.1:8080/send"}}},
		{"file:///var/spool/promopool", Config{Kind: "file", File: FileConfig{Dir: "/var/spool/promopool"}}},
		{"file://spool/dev", Config{Kind: "file", File: FileConfig{Dir: "spool/dev"}}},
		{"file:spool", Config{Kind: "file", File: FileConfig{Dir: "spool"}}},
		{"null://", Config{Kind: "null"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, u := range []string{
		"", "pigeon://x", "smtp://", "smtp://h?tls=ssl&bogus=1", "smtp://h?concurrency=two",
		"smtp://h?rate=-1", "smtps://h?tls=none", "https:///path", "webhook+https://h?timeout=soon",
		"file://", "smtp://user:secret@h:port",
	} {
		t.Run(u, func(t *testing.T) {
			cfg, err := ParseURL(u)
			if err == nil {
				if _, err = New(cfg); err == nil {
					t.Fatalf("%q accepted: %+v", u, cfg)
				}
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}
