package bot

import bd "github.com/botdistributor/botdistributor"

// Lang is a language of the page and of the default reply texts.
type Lang string

// The languages.
const (
	LangEnglish Lang = "en"
	LangRussian Lang = "ru"
)

// DefaultReplies returns the default automatic replies in lang (English
// for an unknown one).
func DefaultReplies(lang Lang) map[bd.Situation]string {
	if lang == LangRussian {
		return map[bd.Situation]string{
			bd.DialogReceived:      "Здравствуйте[, {customer_first_name}]! Мы получили ваше сообщение.",
			bd.ManagerAssigned:     "Вам ответит {manager}.",
			bd.NoManagerOnline:     "Сейчас нет менеджеров на связи. Мы ответим, как только кто-нибудь вернётся.",
			bd.AllManagersBusy:     "Все менеджеры сейчас заняты. Пожалуйста, подождите: вы в очереди.",
			bd.OutsideWorkingHours: "Сейчас мы не работаем. Мы ответим, когда откроемся.",
		}
	}
	return map[bd.Situation]string{
		bd.DialogReceived:      "Hello[, {customer_first_name}]! We have received your message.",
		bd.ManagerAssigned:     "{manager} will answer you shortly.",
		bd.NoManagerOnline:     "No manager is online right now. We will answer as soon as someone is back.",
		bd.AllManagersBusy:     "All our managers are busy. Please wait, you are in the queue.",
		bd.OutsideWorkingHours: "We are closed now. We will answer when we open.",
	}
}

// IsDefaultReplies reports whether replies are the default texts of some
// language, i.e. nobody has written their own yet.
func IsDefaultReplies(replies map[bd.Situation]string) bool {
	for _, lang := range []Lang{LangEnglish, LangRussian} {
		def := DefaultReplies(lang)
		same := len(def) == len(replies)
		for sit, text := range def {
			same = same && replies[sit] == text
		}
		if same {
			return true
		}
	}
	return false
}

// DefaultSettings are the settings a newly connected account starts with:
// switched off (nothing happens until the settings are saved with the
// distribution switched on, as in the original module), nobody in the
// distribution yet, three open dialogs per manager, status and presence
// both required, reassignment off, always open, and a text for every
// automatic reply in lang.
func DefaultSettings(lang Lang) bd.Settings {
	return bd.Settings{
		Active:          false,
		DefaultCapacity: 3,
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Replies:         DefaultReplies(lang),
	}
}
