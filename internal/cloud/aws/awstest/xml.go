package awstest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
)

// ec2NS is the namespace of EC2 query-protocol responses.
const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

func xmlEscape(w io.Writer, s string) error { return xml.EscapeText(w, []byte(s)) }

func requestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// writeXML answers with v encoded as an EC2 response document.
func writeXML(w http.ResponseWriter, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	io.WriteString(w, xml.Header)
	w.Write(out)
}

// Response documents, shaped as the EC2 API reference gives them.

type returnResponse struct {
	XMLName   xml.Name
	XMLNS     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

type blockStateResponse struct {
	XMLName   xml.Name `xml:"GetImageBlockPublicAccessStateResponse"`
	XMLNS     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	State     string   `xml:"imageBlockPublicAccessState"`
	ManagedBy string   `xml:"managedBy"`
}

type consoleResponse struct {
	XMLName    xml.Name `xml:"GetConsoleOutputResponse"`
	XMLNS      string   `xml:"xmlns,attr"`
	RequestID  string   `xml:"requestId"`
	InstanceID string   `xml:"instanceId"`
	Timestamp  string   `xml:"timestamp"`
	Output     string   `xml:"output"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type s3Location struct {
	Bucket string `xml:"s3Bucket"`
	Prefix string `xml:"s3Prefix,omitempty"`
}

type exportTaskXML struct {
	Description   string     `xml:"description,omitempty"`
	Format        string     `xml:"diskImageFormat,omitempty"`
	TaskID        string     `xml:"exportImageTaskId"`
	ImageID       string     `xml:"imageId"`
	RoleName      string     `xml:"roleName,omitempty"`
	Progress      string     `xml:"progress,omitempty"`
	Location      s3Location `xml:"s3ExportLocation"`
	Status        string     `xml:"status"`
	StatusMessage string     `xml:"statusMessage,omitempty"`
	Tags          []xmlTag   `xml:"tagSet>item"`
}

type exportImageResponse struct {
	XMLName   xml.Name `xml:"ExportImageResponse"`
	XMLNS     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	exportTaskXML
}

type describeExportsResponse struct {
	XMLName   xml.Name        `xml:"DescribeExportImageTasksResponse"`
	XMLNS     string          `xml:"xmlns,attr"`
	RequestID string          `xml:"requestId"`
	Tasks     []exportTaskXML `xml:"exportImageTaskSet>item"`
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
