package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"promopool/auth"
	"promopool/users"
)

// Session is a signed-in user: a row of admin_sessions, found by the SHA-256 of the
// random token its cookie carries. The server decides when it ends (expires_at, set
// once at sign-in; revoked_at, set by sign-out), never the cookie.
type Session struct {
	// ID is the row's id.
	ID int64 `db:"id"`
	// Actor is who the activity log names: "admin" for the password, else the API key's name.
	Actor string `db:"actor"`
	// Credential is how the session was opened: password, api_key or static_key.
	Credential string `db:"credential"`
	// KeyID is the stored API key it was opened with.
	KeyID sql.NullInt64 `db:"api_key_id"`
	// KeyName is the API key it was opened with.
	KeyName sql.NullString `db:"key_name"`
	// PasswordTag is the keyed hash of the password it was opened with.
	PasswordTag []byte `db:"password_tag"`
	// UserID and UserEpoch name the user a user session was opened by, and the user's
	// session epoch then.
	UserID    sql.NullInt64 `db:"user_id"`
	UserEpoch sql.NullInt64 `db:"user_epoch"`
	// ExpiresAt is when it ends.
	ExpiresAt time.Time `db:"expires_at"`
	// Role is what the session may do: the user's role; admin for the shared password
	// and for an API key (which needs the admin scope to sign in).
	Role users.Role `db:"-"`
	// Who is the session's actor as the history records it.
	Who auth.Actor `db:"-"`
	// token is the cookie's random token; the CSRF token derives from it.
	token string
}

// Credentials a session is opened with (admin_sessions.credential).
const (
	credPassword  = "password"
	credAPIKey    = "api_key"
	credStaticKey = "static_key"
	credUser      = "user"
)

// secretName is the secrets row of the generated session secret.
const secretName = "admin_session"

// loadSecret returns the session secret every web process shares: drawn at random and
// stored by the first process that starts, read back by the others (one INSERT … ON
// CONFLICT DO NOTHING, then a SELECT, so two processes starting at once agree).
func loadSecret(ctx context.Context, db *sqlx.DB) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, secretName, b); err != nil {
		return nil, fmt.Errorf("storing the admin session secret: %w", err)
	}
	var v []byte
	if err := db.GetContext(ctx, &v, `SELECT value FROM secrets WHERE name = $1`, secretName); err != nil {
		return nil, fmt.Errorf("reading the admin session secret: %w", err)
	}
	return v, nil
}

type sessionCtx struct{}

func sessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionCtx{}).(*Session)
	return s
}

// sign is the base64 HMAC of b under the session secret.
func (h *Handler) sign(b []byte) string {
	m := hmac.New(sha256.New, h.secret)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// passwordTag is the keyed hash a password session keeps of ADMIN_PASSWORD: when the
// password changes the tag no longer matches and the session ends.
func (h *Handler) passwordTag() []byte {
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte("admin password\x00" + h.cfg.Password))
	return m.Sum(nil)
}

func (h *Handler) csrfToken(s *Session) string {
	return h.sign([]byte("csrf\x00" + s.token))
}

// openSession stores a session for the credential just checked (u the user, else p the
// API key, else the shared password) and sets its cookie: a random token and its
// signature.
func (h *Handler) openSession(ctx context.Context, w http.ResponseWriter, r *http.Request, p *auth.Principal, u *users.User) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	now := h.now()
	exp := now.Add(h.cfg.SessionTTL)
	row := struct {
		actor, cred string
		keyID       sql.NullInt64
		keyName     sql.NullString
		tag         []byte
		user, epoch sql.NullInt64
	}{actor: "admin", cred: credPassword, tag: h.passwordTag()}
	switch {
	case u != nil:
		row.actor, row.cred, row.tag = u.Email, credUser, nil
		row.user, row.epoch = sql.NullInt64{Int64: u.ID, Valid: true}, sql.NullInt64{Int64: u.Epoch, Valid: true}
	case p != nil:
		row.actor, row.cred, row.tag = p.Name, credStaticKey, nil
		row.keyName = sql.NullString{String: p.Name, Valid: true}
		if !p.Static() {
			row.cred, row.keyID = credAPIKey, sql.NullInt64{Int64: p.KeyID, Valid: true}
		}
	}
	// Sessions long past their end are swept here, at the rate people sign in.
	if _, err := h.deps.DB.ExecContext(ctx, `DELETE FROM admin_sessions WHERE expires_at < $1`, now.Add(-7*24*time.Hour)); err != nil {
		return fmt.Errorf("sweeping old admin sessions: %w", err)
	}
	_, err := h.deps.DB.ExecContext(ctx, `
		INSERT INTO admin_sessions (token_hash, actor, credential, api_key_id, key_name, password_tag, user_id, user_epoch, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		sum[:], row.actor, row.cred, row.keyID, row.keyName, row.tag, row.user, row.epoch, now, exp)
	if err != nil {
		return fmt.Errorf("storing an admin session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token + "." + h.sign([]byte(token)), Path: "/admin/",
		Expires: exp, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
	h.deps.Log.Info("admin signed in", "actor", row.actor, "credential", row.cred)
	return nil
}

// readSession returns the request's live session: a cookie whose signature holds,
// whose row is neither expired nor revoked, and whose credential still stands (the
// same ADMIN_PASSWORD; an API key neither revoked nor stripped of its admin scope; a
// user neither disabled nor given another role or password since). A user session
// whose user fell is revoked on the spot.
func (h *Handler) readSession(r *http.Request) (*Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	token, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(h.sign([]byte(token)))) {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	var s Session
	err = h.deps.DB.GetContext(r.Context(), &s, `
		SELECT id, actor, credential, api_key_id, key_name, password_tag, user_id, user_epoch, expires_at FROM admin_sessions
		WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2`, sum[:], h.now())
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) && r.Context().Err() == nil {
			h.deps.Log.Error("reading an admin session", "err", err)
		}
		return nil, false
	}
	s.token = token
	if !h.credentialStands(r.Context(), &s) {
		// A user's standing is the database's, the same for every process: a session
		// it ended is revoked for good. (The password and API_KEYS are each process's
		// configuration, which may differ for a while during a deploy.)
		if s.Credential == credUser && r.Context().Err() == nil {
			if err := h.endSession(r.Context(), &s); err != nil {
				h.deps.Log.Error("revoking a fallen admin session", "err", err)
			}
		}
		return nil, false
	}
	return &s, true
}

// credentialStands reports whether what s was opened with still signs in, and sets
// the session's Role and Who from it.
func (h *Handler) credentialStands(ctx context.Context, s *Session) bool {
	switch s.Credential {
	case credPassword:
		s.Role, s.Who = users.RoleAdmin, auth.Actor{Kind: auth.ActorPassword, Name: "admin"}
		return h.cfg.Password != "" && hmac.Equal(s.PasswordTag, h.passwordTag())
	case credUser:
		return h.userStands(ctx, s)
	}
	if h.deps.Keys == nil {
		return false
	}
	p := auth.Principal{Name: s.KeyName.String, KeyID: s.KeyID.Int64}
	p, err := h.deps.Keys.Recheck(ctx, p)
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthorized) && ctx.Err() == nil {
			h.deps.Log.Error("rechecking an admin session's key", "err", err)
		}
		return false
	}
	s.Role, s.Who = users.RoleAdmin, p.Who
	return p.Has(auth.ScopeAdmin)
}

// userStands reports whether a user session's user is enabled and at the epoch the
// session was opened under (not disabled, nor given another role or password since).
func (h *Handler) userStands(ctx context.Context, s *Session) bool {
	if h.deps.Users == nil || !s.UserID.Valid {
		return false
	}
	u, err := h.deps.Users.Get(ctx, s.UserID.Int64)
	if err != nil {
		if !errors.Is(err, users.ErrNotFound) && ctx.Err() == nil {
			h.deps.Log.Error("rechecking an admin session's user", "err", err)
		}
		return false
	}
	if !u.Enabled() || u.Epoch != s.UserEpoch.Int64 {
		return false
	}
	s.Role, s.Who = u.Role, u.Actor()
	return true
}

// session lets a request through with a live session whose role is at least min, and
// for any method but GET/HEAD a CSRF token (form field csrf or header X-CSRF-Token)
// matching it. A form body is read only if url-encoded, and at most limit bytes of it.
// The handler's context carries the session and its actor (auth.WithActor).
func (h *Handler) session(limit int64, min users.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.readSession(r)
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				h.toLogin(w, r)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		ctx := context.WithValue(r.Context(), sessionCtx{}, s)
		if !s.Role.AtLeast(min) {
			h.errorPage(w, r.WithContext(ctx), http.StatusForbidden, fmt.Sprintf(
				"Your role (%s) may not do this: it needs %s. An admin can change roles on the Users page.", s.Role, min))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !h.checkCSRF(w, r, s, limit) {
				return
			}
		}
		next(w, r.WithContext(auth.WithActor(ctx, s.Who)))
	})
}

// checkCSRF answers 403 (or 413 for a form too large to read) unless the request
// carries the session's CSRF token and no foreign Origin.
func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request, s *Session, limit int64) bool {
	token := r.Header.Get("X-CSRF-Token")
	if token == "" && isURLEncoded(r) {
		// Forms send the token in the body; a streamed upload sends the header instead,
		// so its body is not read here.
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"The form is too large to read (at most %s here; pasted codes are limited to 10 MB): upload a file instead.", sizeWords(limit)))
			return false
		}
		token = r.PostFormValue("csrf")
	}
	if !hmac.Equal([]byte(token), []byte(h.csrfToken(s))) || !sameOrigin(r) {
		h.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
		return false
	}
	return true
}

// isURLEncoded: the body is a url-encoded form, the only kind of form the pages read
// (a multipart body would be spooled to disk by the standard library's parser).
func isURLEncoded(r *http.Request) bool {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

func sizeWords(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d KB", n>>10)
}

// endSession revokes the request's session: its cookie no longer signs in anywhere,
// even if it was copied.
func (h *Handler) endSession(ctx context.Context, s *Session) error {
	if _, err := h.deps.DB.ExecContext(ctx, `UPDATE admin_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, s.ID); err != nil {
		return fmt.Errorf("ending admin session %d: %w", s.ID, err)
	}
	return nil
}
