# && with a non-bool operand
true && 1
