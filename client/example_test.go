package client_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"promopool/client"
)

// The README's "Go client" integration, compiled with the tests (TestREADMEExample keeps
// the two the same; TestClientFlow runs the same calls against a server).
func Example() {
	ctx := context.Background()
	err := func() error {
		c, err := client.New("https://promopool.example", os.Getenv("PROMOPOOL_KEY"))
		if err != nil {
			return err
		}
		g, err := client.Check(c.CreateGroupWithResponse(ctx, client.GroupInput{Name: new("Spring 30%")}))
		if err != nil {
			return err // a *client.APIError for an error answer: Status, Code, Message
		}
		codes := strings.NewReader("SPRING-0001\nSPRING-0002\n")
		if _, err := client.Check(c.UploadCodesWithBodyWithResponse(ctx, *g.JSON201.Id, nil, "text/plain", codes)); err != nil {
			return err
		}
		iss, err := client.Check(c.IssueCodeWithResponse(ctx, *g.JSON201.Id, &client.IssueCodeParams{IdempotencyKey: "order-1042"},
			client.IssueCodeJSONRequestBody{CustomerId: "c-1042", CreateCustomer: new(true)}))
		if err != nil {
			return err
		}
		fmt.Println("code for c-1042:", *iss.JSON201.Code) // JSON200 when the key was used before
		return nil
	}()
	_ = err
}
