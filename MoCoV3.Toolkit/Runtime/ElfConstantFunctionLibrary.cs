using System.Buffers.Binary;
using System.Text;

namespace MoCoV3.Runtime;

/// <summary>
/// Writes a minimal x86-64 ELF shared object that exports one C function, <c>int NAME(void)</c>, returning a constant.
/// It exists so that the toolkit can interpose a single libtorch-internal function (see <see cref="MklCpuDispatch"/>)
/// without a C compiler on the user's machine or a prebuilt binary in the repository: the object is 4.2 KB, has no
/// relocations, no dependencies and no section headers, which is all the dynamic loader needs.
/// Layout: one read+execute segment (ELF header, program headers, .dynsym, .dynstr, SysV .hash, code), one
/// read+write segment holding .dynamic (older glibc adjusts it in place), and PT_GNU_STACK (non-executable stack).
/// </summary>
public static class ElfConstantFunctionLibrary
{
    private const int PageSize = 0x1000;
    private const int HeaderSize = 64, ProgramHeaderSize = 56, ProgramHeaders = 4, SymbolSize = 24, DynamicEntrySize = 16;

    /// <summary>The bytes of the shared object; <paramref name="soname"/> is recorded as DT_SONAME.</summary>
    public static byte[] Build(string soname, string function, int returnValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(soname);
        ArgumentException.ThrowIfNullOrEmpty(function);

        // .dynstr: "\0function\0soname\0"
        byte[] strtab = [0, .. Encoding.ASCII.GetBytes(function), 0, .. Encoding.ASCII.GetBytes(soname), 0];
        int functionName = 1, sonameName = 2 + function.Length;

        int symtabOffset = HeaderSize + ProgramHeaders * ProgramHeaderSize;
        int strtabOffset = symtabOffset + 2 * SymbolSize;
        int hashOffset = Align(strtabOffset + strtab.Length, 8);
        const int hashSize = 5 * 4; // nbucket, nchain, bucket[1], chain[2]
        int codeOffset = Align(hashOffset + hashSize, 16);
        // mov eax, imm32 ; ret
        byte[] code = [0xB8, .. BitConverter.GetBytes(returnValue), 0xC3];
        int textEnd = codeOffset + code.Length;

        const int dynamicOffset = PageSize; // file offset == virtual address (the loader adds the load base)
        const int dynamicEntries = 7;
        int fileSize = dynamicOffset + dynamicEntries * DynamicEntrySize;
        var elf = new byte[fileSize];
        var s = elf.AsSpan();

        // ELF header
        s[0] = 0x7F; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2; // ELFCLASS64
        s[5] = 1; // little endian
        s[6] = 1; // EV_CURRENT
        U16(s, 0x10, 3);  // ET_DYN
        U16(s, 0x12, 62); // EM_X86_64
        U32(s, 0x14, 1);
        U64(s, 0x18, 0);  // no entry point
        U64(s, 0x20, HeaderSize);
        U64(s, 0x28, 0);  // no section headers
        U16(s, 0x34, HeaderSize);
        U16(s, 0x36, ProgramHeaderSize);
        U16(s, 0x38, ProgramHeaders);
        U16(s, 0x3A, 64);

        // Program headers: LOAD (R+X), LOAD (R+W, .dynamic), DYNAMIC, GNU_STACK (R+W)
        const uint PtLoad = 1, PtDynamic = 2, PtGnuStack = 0x6474E551, R = 4, W = 2, X = 1;
        Phdr(s, 0, PtLoad, R | X, 0, textEnd, PageSize);
        Phdr(s, 1, PtLoad, R | W, dynamicOffset, dynamicEntries * DynamicEntrySize, PageSize);
        Phdr(s, 2, PtDynamic, R | W, dynamicOffset, dynamicEntries * DynamicEntrySize, 8);
        Phdr(s, 3, PtGnuStack, R | W, 0, 0, 16);

        // .dynsym: [0] null, [1] GLOBAL FUNC, default visibility, defined (any section index other than UNDEF/ABS)
        int sym = symtabOffset + SymbolSize;
        U32(s, sym, (uint)functionName);
        s[sym + 4] = (1 << 4) | 2; // STB_GLOBAL, STT_FUNC
        U16(s, sym + 6, 1);
        U64(s, sym + 8, (ulong)codeOffset);
        U64(s, sym + 16, (ulong)code.Length);

        strtab.CopyTo(s[strtabOffset..]);

        // SysV hash: one bucket holding symbol 1, whose chain ends
        U32(s, hashOffset, 1);
        U32(s, hashOffset + 4, 2);
        U32(s, hashOffset + 8, 1);
        U32(s, hashOffset + 12, 0);
        U32(s, hashOffset + 16, 0);

        code.CopyTo(s[codeOffset..]);

        const long DtNull = 0, DtHash = 4, DtStrtab = 5, DtSymtab = 6, DtStrsz = 10, DtSyment = 11, DtSoname = 14;
        (long Tag, long Value)[] dynamic =
        [
            (DtHash, hashOffset), (DtStrtab, strtabOffset), (DtSymtab, symtabOffset), (DtStrsz, strtab.Length),
            (DtSyment, SymbolSize), (DtSoname, sonameName), (DtNull, 0),
        ];
        for (int i = 0; i < dynamic.Length; i++)
        {
            U64(s, dynamicOffset + i * DynamicEntrySize, (ulong)dynamic[i].Tag);
            U64(s, dynamicOffset + i * DynamicEntrySize + 8, (ulong)dynamic[i].Value);
        }
        return elf;
    }

    private static void Phdr(Span<byte> s, int index, uint type, uint flags, long offset, long size, long align)
    {
        int p = HeaderSize + index * ProgramHeaderSize;
        U32(s, p, type);
        U32(s, p + 4, flags);
        U64(s, p + 8, (ulong)offset);   // p_offset
        U64(s, p + 16, (ulong)offset);  // p_vaddr
        U64(s, p + 24, (ulong)offset);  // p_paddr
        U64(s, p + 32, (ulong)size);    // p_filesz
        U64(s, p + 40, (ulong)size);    // p_memsz
        U64(s, p + 48, (ulong)align);
    }

    private static int Align(int value, int alignment) => (value + alignment - 1) / alignment * alignment;
    private static void U16(Span<byte> s, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(s[at..], v);
    private static void U32(Span<byte> s, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(s[at..], v);
    private static void U64(Span<byte> s, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(s[at..], v);
}
