package templates

// HistoryChart is a backend's or one server's traffic over the last hours,
// drawn as SVG on a ChartWidth × ChartHeight canvas: counts per step, state
// changes as markers, every step with its values on hover. Coordinates are
// already computed; the component only places them.
type HistoryChart struct {
	Backend string
	// Server is the server shown, "" for the whole backend.
	Server string
	// Servers lists the backend's servers, for the selector; nil on a
	// server's own page, where the chart shows that server only.
	Servers []string
	// Action is the page the range and server form shows the chart on.
	Action string
	// Range is the range shown ("1h", "6h" or "24h"); Ranges lists them.
	Range  string
	Ranges []string
	// Unit says what one value counts, e.g. "per 5 min".
	Unit string
	// Plot is the plotting area inside the canvas.
	Plot  ChartBox
	Area  string // the requests, as a filled area
	Lines []ChartLine
	// XTicks are time labels (UTC), YTicks value labels.
	XTicks []ChartTick
	YTicks []ChartTick
	// Steps are the hover targets, oldest first.
	Steps   []ChartStep
	Markers []ChartMarker
	// MoreMarkers counts state changes not drawn (too many to mark).
	MoreMarkers int
	// Totals sums the range up in words.
	Totals string
	// Empty reports that nothing was recorded in the range.
	Empty bool
	// Error says why the history could not be read; "" when it was.
	Error string
	// RefreshMS is how often the page fetches the chart again, in
	// milliseconds: as often as history is written.
	RefreshMS int64
}

// Canvas size of a HistoryChart, in SVG user units.
const (
	ChartWidth  = 720
	ChartHeight = 200
)

// ChartBox is a rectangle in canvas units.
// H is Y1 - Y0.
type ChartBox struct{ X0, Y0, X1, Y1, H string }

// ChartLine is one series as an SVG path.
type ChartLine struct {
	Name  string
	Class string
	Path  string
}

// ChartTick is an axis label at Pos (x for time, y for values).
type ChartTick struct {
	Pos   string
	Label string
}

// ChartStep is one step of the chart: the column a pointer hovers, its
// start (Unix seconds), the requests it counts and every value in words.
type ChartStep struct {
	X, W     string
	Start    int64
	Requests int64
	Title    string
}

// ChartMarker is a state change on the timeline: Class is "down", "up" or
// "admin".
type ChartMarker struct {
	X     string
	Class string
	// Glyph is the marker's symbol above the plot, as an SVG path.
	Glyph string
	Time  int64 // Unix seconds
	Title string
}

// historyLabel is the chart's accessible name.
func historyLabel(c HistoryChart) string {
	what := "backend " + c.Backend
	if c.Server != "" {
		what = "server " + c.Backend + "/" + c.Server
	}
	return "Traffic of " + what + " over the last " + c.Range + ": " + c.Totals
}
