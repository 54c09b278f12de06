# trailing tokens after a complete expression
{ a = 1; } }
