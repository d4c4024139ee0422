package mg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	bd "github.com/botdistributor/botdistributor"
)

// AssignResult is MG's answer to an assignment.
type AssignResult struct {
	// Responsible is the new responsible.
	Responsible Responsible `json:"responsible"`
	// PreviousResponsible is who was responsible before; nil if nobody.
	PreviousResponsible *Responsible `json:"previous_responsible"`
	// LeftUserID is the MG user removed from the chat by the reassignment;
	// 0 if none.
	LeftUserID int64 `json:"left_user_id"`
	// IsReassign is true when the dialog already had a responsible.
	IsReassign bool `json:"is_reassign"`
}

// UnassignResult is MG's answer to an unassignment.
type UnassignResult struct {
	// PreviousResponsible is who was responsible.
	PreviousResponsible *Responsible `json:"previous_responsible"`
}

func dialogPath(dialog bd.DialogID, action string) (string, error) {
	if dialog <= 0 {
		return "", fmt.Errorf("mg: dialog id must be positive, got %d", dialog)
	}
	return "/dialogs/" + strconv.FormatInt(int64(dialog), 10) + "/" + action, nil
}

// AssignDialog makes to responsible for the dialog
// (PATCH /dialogs/{id}/assign with {"user_id"} for a manager or
// {"bot_id"} for a bot). Assigning the same target again is harmless, so the
// call is retried like a GET.
//
// Only the latest dialog of a chat can be assigned: MG answers 400
// "dialog is not the latest in the chat" otherwise, which matches
// ErrDialogNotLatest; an unknown dialog matches ErrNotFound.
func (c *Client) AssignDialog(ctx context.Context, dialog bd.DialogID, to bd.Responsible) (AssignResult, error) {
	path, err := dialogPath(dialog, "assign")
	if err != nil {
		return AssignResult{}, err
	}
	var body any
	switch to.Kind {
	case bd.ManagerResponsible:
		if to.ID <= 0 {
			return AssignResult{}, fmt.Errorf("mg: assign dialog %d: manager id must be positive, got %d", dialog, to.ID)
		}
		body = struct {
			UserID int64 `json:"user_id"`
		}{to.ID}
	case bd.BotResponsible:
		if to.ID <= 0 {
			return AssignResult{}, fmt.Errorf("mg: assign dialog %d: bot id must be positive, got %d", dialog, to.ID)
		}
		body = struct {
			BotID int64 `json:"bot_id"`
		}{to.ID}
	default:
		return AssignResult{}, fmt.Errorf("mg: assign dialog %d: no responsible given (use UnassignDialog to remove one)", dialog)
	}
	var res AssignResult
	if err := c.do(ctx, call{method: http.MethodPatch, path: path, body: body, idempotent: true}, &res); err != nil {
		return AssignResult{}, err
	}
	return res, nil
}

// UnassignDialog removes the dialog's responsible
// (PATCH /dialogs/{id}/unassign). It is retried only when MG refused it
// (429, 503; see [RetryPolicy]): a repeat after a lost answer would fail
// with ErrDialogNotAssigned. A failure MG may have applied wraps
// [ErrAmbiguous].
func (c *Client) UnassignDialog(ctx context.Context, dialog bd.DialogID) (UnassignResult, error) {
	path, err := dialogPath(dialog, "unassign")
	if err != nil {
		return UnassignResult{}, err
	}
	var res UnassignResult
	if err := c.do(ctx, call{method: http.MethodPatch, path: path}, &res); err != nil {
		return UnassignResult{}, err
	}
	return res, nil
}

// CloseDialog closes the dialog (DELETE /dialogs/{id}/close). It is
// retried only when MG refused it (429, 503; see [RetryPolicy]); a failure
// MG may have applied wraps [ErrAmbiguous].
func (c *Client) CloseDialog(ctx context.Context, dialog bd.DialogID) error {
	path, err := dialogPath(dialog, "close")
	if err != nil {
		return err
	}
	return c.do(ctx, call{method: http.MethodDelete, path: path}, nil)
}

// SendMessageRequest is a message a bot sends (POST /messages).
type SendMessageRequest struct {
	ChatID bd.ChatID `json:"chat_id"`
	// Scope is ScopePublic (delivered to the customer) or ScopePrivate
	// (an internal note). Required.
	Scope string `json:"scope"`
	// Type is MessageText unless empty, which also means text.
	Type    string `json:"type,omitempty"`
	Content string `json:"content,omitempty"`
	// QuoteMessageID makes the message a reply.
	QuoteMessageID int64 `json:"quote_message_id,omitempty"`
}

// SendResult is MG's answer to a sent message.
type SendResult struct {
	MessageID int64 `json:"message_id"`
	Time      Time  `json:"time"`
}

// SendMessage posts a message into a chat (POST /messages).
//
// It is retried only when MG refused the message without taking it: on
// 429 and 503, after the server's Retry-After (or the policy's backoff),
// at most RetryPolicy.RefusedAttempts times and RefusedMaxWait in total
// (3 and 10s by default), and never beyond ctx. When it gives up on such
// an answer, the error is the [*APIError] and [RetryAfter] reports MG's
// delay. Any other 5xx, a timeout or a connection lost after the request
// was sent is not retried, as MG may have posted the message already and a
// retry could post it twice: the error wraps [ErrAmbiguous], and
// [Client.HasSent] tells whether the message landed. Other 4xx answers
// mean MG refused the message.
//
// Delivery to the customer happens later; a failure then shows on the
// message (status failed), not here.
func (c *Client) SendMessage(ctx context.Context, m SendMessageRequest) (SendResult, error) {
	if m.ChatID <= 0 {
		return SendResult{}, fmt.Errorf("mg: send message: chat id must be positive, got %d", m.ChatID)
	}
	if m.Scope != ScopePublic && m.Scope != ScopePrivate {
		return SendResult{}, fmt.Errorf("mg: send message: scope must be %q or %q, got %q", ScopePublic, ScopePrivate, m.Scope)
	}
	if m.Type == "" {
		m.Type = MessageText
	}
	if m.Type == MessageText && m.Content == "" {
		return SendResult{}, errors.New("mg: send message: empty text")
	}
	var res SendResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/messages", body: m}, &res); err != nil {
		return SendResult{}, err
	}
	return res, nil
}
