/*
 * bcryptprimitives.c: a stand-in for Windows' bcryptprimitives.dll, for
 * running berth.exe under wine 8.0 (Debian 12), which lacks the DLL.
 *
 * Go 1.24 and later get their random bytes from ProcessPrng in
 * bcryptprimitives.dll (runtime/os_windows.go) and exit at start-up when it
 * cannot be loaded. This stub exports ProcessPrng and fills the buffer with
 * RtlGenRandom (advapi32's SystemFunction036), which wine implements. It is
 * used only by the fault lab's wine runs (internal/lab, ./test.sh); it is
 * never shipped, and real Windows has the real DLL.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *        bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
