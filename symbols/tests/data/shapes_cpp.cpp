// A C++ global at namespace scope: its public symbol is only the decorated ?CppCounter@@3KA.
unsigned long CppCounter = 42;
extern "C" unsigned long ShapeCppTouch(void) { return CppCounter; }
