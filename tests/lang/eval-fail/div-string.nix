# dividing a string
"10" / 2
