package main

// The --format engine of `sluice consume`: kcat-style format strings compiled
// once into a list of parts, then rendered per record by appending to a
// reused buffer (no allocation per record).
//
// Directives:
//
//	%t  topic                 %p  partition
//	%o  offset                %T  timestamp (milliseconds since the epoch)
//	%k  key (empty if null)   %K  key length in bytes (-1 if null)
//	%v  value (empty if null) %S  value length in bytes (-1 if null)
//	%s  value, as kcat spells it
//	%h  headers as k=v pairs separated by commas
//	%%  a literal percent sign
//
// Escapes: \n newline, \t tab, \r carriage return, \\ backslash.
// Anything else after % or \ is a usage error, so typos are caught up front.

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

const defaultFormat = `%v\n`

type formatOp uint8

const (
	fmtLiteral formatOp = iota
	fmtTopic
	fmtPartition
	fmtOffset
	fmtKey
	fmtValue
	fmtHeaders
	fmtTimestamp
	fmtKeyLen
	fmtValueLen
)

var formatDirectives = map[byte]formatOp{
	't': fmtTopic,
	'p': fmtPartition,
	'o': fmtOffset,
	'k': fmtKey,
	'v': fmtValue,
	's': fmtValue, // kcat's name for the value
	'h': fmtHeaders,
	'T': fmtTimestamp,
	'K': fmtKeyLen,
	'S': fmtValueLen,
}

type formatPart struct {
	op      formatOp
	literal string // for fmtLiteral
}

// recordFormat is a compiled format string.
type recordFormat []formatPart

// parseFormat compiles a kcat-style format string.
func parseFormat(s string) (recordFormat, error) {
	var (
		parts recordFormat
		lit   []byte
	)
	flush := func() {
		if len(lit) > 0 {
			parts = append(parts, formatPart{op: fmtLiteral, literal: string(lit)})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q ends with a lone %%", s)
			}
			i++
			if s[i] == '%' {
				lit = append(lit, '%')
				continue
			}
			op, ok := formatDirectives[s[i]]
			if !ok {
				return nil, fmt.Errorf("format %q: unknown directive %%%c (known: %%t %%p %%o %%k %%v %%s %%h %%T %%K %%S %%%%)", s, s[i])
			}
			flush()
			parts = append(parts, formatPart{op: op})
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q ends with a lone backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, fmt.Errorf("format %q: unknown escape \\%c (known: \\n \\t \\r \\\\)", s, s[i])
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return parts, nil
}

// appendRecord appends r rendered by f to dst.
func (f recordFormat) appendRecord(dst []byte, r *kgo.Record) []byte {
	for i := range f {
		switch p := &f[i]; p.op {
		case fmtLiteral:
			dst = append(dst, p.literal...)
		case fmtTopic:
			dst = append(dst, r.Topic...)
		case fmtPartition:
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case fmtOffset:
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case fmtKey:
			dst = append(dst, r.Key...)
		case fmtValue:
			dst = append(dst, r.Value...)
		case fmtHeaders:
			for j, h := range r.Headers {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		case fmtTimestamp:
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case fmtKeyLen:
			dst = appendLen(dst, r.Key)
		case fmtValueLen:
			dst = appendLen(dst, r.Value)
		}
	}
	return dst
}

// appendLen appends len(b), or -1 for a Kafka null.
func appendLen(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "-1"...)
	}
	return strconv.AppendInt(dst, int64(len(b)), 10)
}

// appendRecordJSON appends r as one line of `consume --json` (the fields are
// documented in cli_consume.go; the tests decode it into recordJSON).
// Hand-written so that it allocates nothing per record.
func appendRecordJSON(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = appendJSONBytes(append(dst, ','), "key", r.Key)
	dst = appendJSONBytes(append(dst, ','), "value", r.Value)
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendJSONString(dst, h.Key)
		dst = appendJSONBytes(append(dst, ','), "value", h.Value)
		dst = append(dst, '}')
	}
	return append(dst, "]}\n"...)
}

// appendJSONBytes appends the member `"name":...` for Kafka bytes: null for
// a Kafka null, a JSON string for valid UTF-8, else standard base64 followed
// by the member `"name_encoding":"base64"`.
func appendJSONBytes(dst []byte, name string, b []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	switch {
	case b == nil:
		return append(dst, "null"...)
	case utf8.Valid(b):
		return appendJSONString(dst, b)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	dst = append(dst, `","`...)
	dst = append(dst, name...)
	return append(dst, `_encoding":"base64"`...)
}

// appendJSONString appends s, which must be valid UTF-8, as a JSON string.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
