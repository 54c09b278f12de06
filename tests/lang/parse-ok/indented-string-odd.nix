# indented strings with escapes and tabs
x: ''
	''${x}
  '''
  ''\n${x}''$
''
