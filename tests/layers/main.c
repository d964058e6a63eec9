/* The layer check (tests/layers/meson.build): linked with the whole of one
 * module's library and only the libraries beneath it, this program fails
 * to link when any function of that module calls one of a module above it
 * (docs/architecture.md). It runs nothing. */
int main(void)
{
	return 0;
}
