package adapter

// splitFast is the fast path of splitElements: a byte scanner for a JSON
// array of JSON values, the shape of nearly every batch. It reports ok only
// when trimmed (the body without leading JSON whitespace, starting with '[')
// is a non-empty array of at most max syntactically valid JSON values with
// only JSON whitespace after its ']'. Each item is then exactly the bytes
// encoding/json's Decoder would return for the element (the value without
// the whitespace around it), which FuzzSplitFast checks. For anything else
// (a syntax error, an empty or too long batch, nesting deeper than
// splitFastDepth) it reports false and splitElements takes the
// encoding/json path, which gives the definite answer and its reason: the
// fast path never rejects.
//
// It accepts what encoding/json's scanner accepts: strings are any bytes
// but '"', '\\' and controls below 0x20 (UTF-8 is judged by Decode, per
// element), with the escapes \" \\ \/ \b \f \n \r \t \uXXXX; numbers follow
// the JSON grammar; literals are true, false, null.
func splitFast(trimmed []byte, max int) ([][]byte, bool) {
	b := trimmed
	if len(b) == 0 || b[0] != '[' {
		return nil, false
	}
	n := countTop(b)
	if n > max {
		return nil, false
	}
	items := make([][]byte, 0, n)
	i := 1
	for {
		i = skipSpace(b, i)
		end, ok := scanValue(b, i, 0)
		if !ok {
			return nil, false
		}
		if len(items) == max {
			return nil, false
		}
		items = append(items, b[i:end:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i++
		case ']':
			if skipSpace(b, i+1) != len(b) {
				return nil, false
			}
			return items, true
		default:
			return nil, false
		}
	}
}

// splitFastDepth bounds nesting on the fast path; deeper input (never a
// transaction) takes the encoding/json path.
const splitFastDepth = 32

// countTop counts the top-level elements of a valid array (commas at depth
// 1 outside strings, plus one), so items is allocated once. On other input
// it is only a capacity hint; the scan that follows judges the syntax.
func countTop(b []byte) int {
	n, depth, inStr := 1, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 1 {
				n++
			}
		}
	}
	return n
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanValue returns the index after the JSON value starting at b[i].
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return scanString(b, i)
	case c == '{':
		if depth >= splitFastDepth {
			return 0, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, false
			}
			j, ok := scanString(b, i)
			if !ok {
				return 0, false
			}
			j = skipSpace(b, j)
			if j >= len(b) || b[j] != ':' {
				return 0, false
			}
			j, ok = scanValue(b, skipSpace(b, j+1), depth+1)
			if !ok {
				return 0, false
			}
			j = skipSpace(b, j)
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case ',':
				i = skipSpace(b, j+1)
			case '}':
				return j + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		if depth >= splitFastDepth {
			return 0, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			j, ok := scanValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			j = skipSpace(b, j)
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case ',':
				i = skipSpace(b, j+1)
			case ']':
				return j + 1, true
			default:
				return 0, false
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return 0, false
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanString returns the index after the JSON string starting at b[i] ('"').
func scanString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-j < 5 {
					return 0, false
				}
				for _, h := range b[j+1 : j+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber returns the index after the JSON number starting at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
