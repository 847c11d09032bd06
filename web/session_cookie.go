package web

// SessionCookie is the name of the console's session cookie. Browsers send
// it to every port of the console's host, so frontends strip it from
// requests: it never reaches an origin.
const SessionCookie = sessionCookie
