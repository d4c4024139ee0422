package bot

import bd "github.com/botdistributor/botdistributor"

// DefaultSettings are the settings a newly connected account starts with:
// nobody in the distribution yet (dialogs wait until managers are chosen),
// three open dialogs per manager, status and presence both required,
// reassignment off, always open, and a text for every automatic reply.
func DefaultSettings() bd.Settings {
	return bd.Settings{
		DefaultCapacity: 3,
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived:      "Hello{{if .Customer}}, {{.Customer}}{{end}}! We have received your message.",
			bd.ManagerAssigned:     "{{.Manager}} will answer you shortly.",
			bd.NoManagerOnline:     "No manager is online right now. We will answer as soon as someone is back.",
			bd.AllManagersBusy:     "All our managers are busy. Please wait, you are in the queue.",
			bd.OutsideWorkingHours: "We are closed now. We will answer when we open.",
		},
	}
}
