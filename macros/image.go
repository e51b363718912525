package macros

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"sync"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/code39"
	"github.com/boombuler/barcode/ean"
	"github.com/boombuler/barcode/qr"
)

// maxImageData is the longest value, in bytes, drawn as a barcode or QR
// code; a longer one is inserted as text.
const maxImageData = 512

// Sizes of the drawn images, in pixels per module (the narrowest bar, or
// one square of a QR code), and their quiet zones, in modules.
const (
	qrModule     = 6
	qrQuiet      = 4
	barModule    = 2
	barHeight    = 80
	barQuiet     = 10
	imageMaxSide = 2000
)

// pngEncoder reuses its compressor between images: a fresh one allocates
// most of a megabyte.
var pngEncoder = &png.Encoder{CompressionLevel: png.BestCompression, BufferPool: &pngBuffers{}}

// pngBuffers is a png.EncoderBufferPool over a sync.Pool.
type pngBuffers struct{ p sync.Pool }

func (b *pngBuffers) Get() *png.EncoderBuffer {
	e, _ := b.p.Get().(*png.EncoderBuffer)
	return e
}

func (b *pngBuffers) Put(e *png.EncoderBuffer) { b.p.Put(e) }

var errNotEncodable = errors.New("value cannot be drawn in this format")

// appendImage appends the image of code in format: an <img> element whose
// alt text is the code, or with dataURI the data: URI alone (for an
// attribute such as src). A code the format cannot draw is appended as
// HTML-escaped text instead (nothing, for a data: URI).
func appendImage(dst []byte, code, format string, dataURI bool) []byte {
	pic, w, h, err := drawPNG(code, format)
	if err != nil {
		if dataURI {
			return dst
		}
		return appendHTMLValue(dst, code)
	}
	if dataURI {
		dst = append(dst, "data:image/png;base64,"...)
		return base64.StdEncoding.AppendEncode(dst, pic)
	}
	dst = append(dst, `<img src="data:image/png;base64,`...)
	dst = base64.StdEncoding.AppendEncode(dst, pic)
	dst = append(dst, `" alt="`...)
	dst = appendHTMLValue(dst, code)
	dst = append(dst, `" width="`...)
	dst = appendUint(dst, w)
	dst = append(dst, `" height="`...)
	dst = appendUint(dst, h)
	return append(dst, `">`...)
}

// drawPNG draws code in format as a two-colour PNG with its quiet zone and
// returns it with its width and height.
func drawPNG(code, format string) ([]byte, int, int, error) {
	bc, err := encodeBarcode(code, format)
	if err != nil {
		return nil, 0, 0, err
	}
	b := bc.Bounds()
	module, quiet, height := barModule, barQuiet, barHeight
	if bc.Metadata().Dimensions == 2 {
		module, quiet, height = qrModule, qrQuiet, (b.Dy()+2*qrQuiet)*qrModule
	}
	w := (b.Dx() + 2*quiet) * module
	if w > imageMaxSide || height > imageMaxSide {
		return nil, 0, 0, errNotEncodable
	}
	img := image.NewPaletted(image.Rect(0, 0, w, height), color.Palette{color.White, color.Black})
	for x := 0; x < b.Dx(); x++ {
		for y := 0; y < height; y++ {
			my := 0 // a 1D code has one row
			if bc.Metadata().Dimensions == 2 {
				if y/module < quiet || y/module >= quiet+b.Dy() {
					continue
				}
				my = y/module - quiet
			}
			if dark(bc.At(b.Min.X+x, b.Min.Y+my)) {
				for i := range module {
					img.SetColorIndex((x+quiet)*module+i, y, 1)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := pngEncoder.Encode(&buf, img); err != nil {
		return nil, 0, 0, err
	}
	return buf.Bytes(), w, height, nil
}

// encodeBarcode encodes code in format with github.com/boombuler/barcode.
func encodeBarcode(code, format string) (barcode.Barcode, error) {
	if code == "" || len(code) > maxImageData {
		return nil, errNotEncodable
	}
	switch format {
	case "qr":
		return qr.Encode(code, qr.M, qr.Auto)
	case "code128":
		return code128.Encode(code)
	case "code39":
		return code39.Encode(code, false, true)
	case "ean13", "ean8":
		n := 13
		if format == "ean8" {
			n = 8
		}
		if len(code) != n && len(code) != n-1 || !allDigits(code) {
			return nil, errNotEncodable
		}
		return ean.Encode(code)
	}
	return nil, errNotEncodable
}

func dark(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r+g+b < 3*0x8000
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
