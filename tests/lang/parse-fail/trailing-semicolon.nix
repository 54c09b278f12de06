# a trailing ; after the top-level expression
1;
