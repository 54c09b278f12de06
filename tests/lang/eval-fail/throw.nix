# throw aborts evaluation with a message
throw "custom failure message"
