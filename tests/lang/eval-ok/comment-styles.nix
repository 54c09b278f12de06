# line and block comments anywhere
/* block */ [ 1 # line comment
  /* inner /* not nested */ 2 ]
