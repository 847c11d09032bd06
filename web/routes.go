package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes lists every route of the console.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverPanics, securityHeaders, limitBody)
	r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no such page")
	}))

	r.Get("/healthz", s.handleHealthz())
	r.Handle("/metrics", s.handleMetrics())
	r.Handle("/static/*", s.handleStatic())
	r.Get("/login", s.handleLoginForm())
	r.Post("/login", s.handleLogin())

	r.Group(func(r chi.Router) {
		r.Use(s.requireUser)
		r.Post("/logout", s.handleLogout())
		r.Get("/", s.handleOverview())
		r.Get("/ws", s.handleWebsocket())
		r.Get("/backends/{backend}", s.handleBackend())
		r.Get("/backends/{backend}/history.json", s.handleHistoryJSON())
		r.Get("/backends/{backend}/servers/{server}/drain", s.handleDrainView())
		r.Get("/audit", s.handleAudit())

		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(roleOperator))
			r.Get("/inspect", s.handleInspect())
			r.Post("/inspect/pin", s.handlePin())
			r.Post("/clear-counters", s.handleClearCounters())
		})

		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(roleAdmin))
			r.Post("/ssl-cert", s.handleSSLCert())
			r.Post("/backends/{backend}/dynamic-cookie", s.handleDynamicCookie())
			r.Post("/backends/{backend}/dynamic-cookie-key", s.handleDynamicCookieKey())
			r.Post("/backends/{backend}/dynamic-cookie-addr-grace", s.handleDynamicCookieAddrGrace())
			r.Post("/backends/{backend}/cookie", s.handleCookie())
			r.Post("/backends/{backend}/servers", s.handleAddServer())
			r.Post("/backends/{backend}/servers/{server}/state", s.handleServerState())
			r.Post("/backends/{backend}/servers/{server}/weight", s.handleServerWeight())
			r.Post("/backends/{backend}/servers/{server}/addr", s.handleServerAddr())
			r.Get("/backends/{backend}/servers/{server}/cookie-preview", s.handleCookiePreview())
			r.Post("/backends/{backend}/servers/{server}/delete", s.handleDeleteServer())
			r.Post("/backends/{backend}/servers/{server}/drain", s.handleDrainWatch())
			r.Get("/users", s.handleUsers())
			r.Post("/users", s.handleUserCreate())
			r.Post("/users/lockouts/clear", s.handleLockoutClear())
			r.Post("/users/{name}/role", s.handleUserRole())
			r.Post("/users/{name}/password", s.handleUserPassword())
			r.Post("/users/{name}/delete", s.handleUserDelete())
		})
	})
	return s.cop.Handler(r)
}
