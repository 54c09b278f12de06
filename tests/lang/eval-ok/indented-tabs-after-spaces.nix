# tabs after common spaces are kept
''
  	foo
  bar
''
