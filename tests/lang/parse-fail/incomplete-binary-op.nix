# dangling binary operator
1 +
