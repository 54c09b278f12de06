# normal strings may contain literal newlines
"line1
line2
  line3"
