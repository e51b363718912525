package admin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"promopool/internal/redistest"
)

// The browser tests share one build of the binary and one Chromium (each test opens
// its own tabs in a fresh browser context, so cookies never mix); both are made on
// first use and ended by TestMain.
var shared struct {
	buildOnce sync.Once
	dir, bin  string
	buildErr  error

	browserOnce sync.Once
	browser     context.Context
	stop        []context.CancelFunc
	browserErr  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(shared.stop) - 1; i >= 0; i-- {
		shared.stop[i]()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// testBinary builds promopool once for the package's tests.
func testBinary(t *testing.T) string {
	t.Helper()
	shared.buildOnce.Do(func() {
		if shared.dir, shared.buildErr = os.MkdirTemp("", "promopool-admin-test-"); shared.buildErr != nil {
			return
		}
		shared.bin = filepath.Join(shared.dir, "promopool")
		if out, err := exec.Command("go", "build", "-o", shared.bin, "promopool/cmd/promopool").CombinedOutput(); err != nil {
			shared.buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if shared.buildErr != nil {
		t.Fatal(shared.buildErr)
	}
	return shared.bin
}

// newTab opens a tab in its own browser context (its own cookies) of the shared
// Chromium, closed when the test ends.
func newTab(t *testing.T) context.Context {
	t.Helper()
	shared.browserOnce.Do(func() {
		chromium, err := exec.LookPath("chromium")
		if err != nil {
			shared.browserErr = fmt.Errorf("Debian's chromium is not installed (scripts/services.sh chromium installs it; scripts/test.sh asks for it): %w", err)
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
			chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		shared.stop = append(shared.stop, cancelAlloc, cancelBrowser)
		if err := chromedp.Do(bctx); err != nil {
			shared.browserErr = fmt.Errorf("starting chromium: %w", err)
			return
		}
		shared.browser = bctx
	})
	if shared.browserErr != nil {
		t.Fatal(shared.browserErr)
	}
	tab, cancel := chromedp.NewContext(shared.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}

// startRedis runs a redis-server of the test's own on a free port (no persistence;
// internal/redistest), so the browser tests' web and worker share Redis with nobody;
// it is stopped when the test ends. It returns its URL.
func startRedis(t *testing.T) string {
	t.Helper()
	return "redis://" + redistest.StartServer(t, redistest.Options{}).Addr + "/0"
}

// tab drives one tab; every method fails the test it is given.
type tab struct {
	ctx   context.Context
	shots string
	mu    sync.Mutex
	// confirms are the confirm() dialogs answered with OK.
	confirms []string
}

// newBrowserTab opens a tab that answers every confirm() with OK (keeping what it
// asked), with a deadline, saving screenshots in testoutput/admin/.
func newBrowserTab(t *testing.T, timeout time.Duration) *tab {
	t.Helper()
	ctx := newTab(t)
	b := &tab{shots: filepath.Join("..", "testoutput", "admin")}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.confirms = append(b.confirms, ev.Message)
			b.mu.Unlock()
			chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	b.ctx = tctx
	return b
}

func (b *tab) asked() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.confirms, "\n")
}

func (b *tab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.shot(t, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s: %v", what, err)
	}
}

func (b *tab) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// submit clicks sel, which leaves the page (a form or a link), waits until the next
// page has loaded, then for waitSel on it.
func (b *tab) submit(t *testing.T, what, sel, waitSel string) {
	t.Helper()
	b.do(t, what+": mark the page", chromedp.Evaluate[chromedp.Void](`window.__promopoolOld = true`), chromedp.Click(chromedp.CSS(sel)))
	for deadline := time.Now().Add(15 * time.Second); ; {
		fresh, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__promopoolOld === undefined && document.readyState === "complete"`))
		if err == nil && fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no new page after clicking %s", what, sel)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.do(t, what, chromedp.WaitVisible(chromedp.CSS(waitSel)))
}

// shot saves a full-page screenshot as name.png and returns it.
func (b *tab) shot(t *testing.T, name string) []byte {
	t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644)
	return buf
}

// docsShot also saves the screenshot as docs/screenshots/name.png when
// PROMOPOOL_DOCS_SCREENSHOT=1.
func (b *tab) docsShot(t *testing.T, name string) {
	t.Helper()
	buf := b.shot(t, name)
	if os.Getenv("PROMOPOOL_DOCS_SCREENSHOT") != "1" || buf == nil {
		return
	}
	dir := filepath.Join("..", "docs", "screenshots")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
