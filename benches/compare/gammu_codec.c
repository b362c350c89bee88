/*
 * gammu_codec: times libgammu's SMS codec on the inputs that benches/compare.rs gives smsgate's
 * codec (issue 14, "The codec side by side"). Built and run by benches/compare/run:
 *
 *   cc -O2 -o gammu_codec gammu_codec.c $(pkg-config --cflags --libs gammu)
 *   taskset -c 1 ./gammu_codec
 *
 * Operations (the same inputs as the Rust side, which checks them against /work/shared/vectors):
 *   decode_gsm7  GSM_DecodePDUFrame of the single-part GSM 7-bit SMS-DELIVER (SMSC part included)
 *   decode_ucs2  GSM_DecodePDUFrame of the single-part UCS2 SMS-DELIVER
 *   encode_70    GSM_EncodeMultiPartSMS (SMS_ConcatenatedTextLong, Unicode, as gammu-smsd-inject
 *                -unicode does) of 70 Chinese characters, then GSM_EncodeSMSFrame(PHONE_SMSSubmit)
 *                of each part (1 part)
 *   encode_300   the same for 300 Chinese characters (5 parts)
 *
 * Output: one line per operation, "name ns_per_op parts", the median of 7 batches of about
 * 0.2 s each. Every result is checked once before timing (the decoded text, the part count);
 * a wrong result exits 1, so a changed library cannot make the figures meaningless silently.
 * libgammu's encoder calls localtime() twice per part (GSM_SetDefaultSMSData); run it with TZ
 * unset and with TZ=UTC to see that cost.
 */
#include <gammu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCHES 7
#define BATCH_NS 200000000.0

static const char *GSM7_DELIVER =
	"07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
static const char *UCS2_DELIVER =
	"07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF";
/* The same 14-character cycle as benches/pdu.rs and benches/compare.rs. */
static const char *CYCLE = "您好欢迎使用短信平台退订回T";

static GSM_SMSMessage sms;
static GSM_MultiSMSMessage multi;
static GSM_MultiPartSMSInfo info;
static unsigned char frame[GSM_MAX_SMS_LENGTH * 2];
static unsigned char number[(GSM_MAX_NUMBER_LENGTH + 1) * 2];
static unsigned char text70[(GSM_MAX_SMS_LENGTH + 1) * 2 * 4];
static unsigned char text300[(GSM_MAX_SMS_LENGTH + 1) * 2 * 4];
static volatile int sink;

static size_t unhex(const char *hex, unsigned char *out)
{
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned int b;
		sscanf(hex + 2 * i, "%2x", &b);
		out[i] = (unsigned char)b;
	}
	return n;
}

/* n characters of CYCLE, as UTF-8 (every character of CYCLE but the last is 3 octets). */
static void chinese(size_t n, char *out)
{
	const char *p = CYCLE;
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		if (*p == 0)
			p = CYCLE;
		size_t len = ((unsigned char)*p < 0x80) ? 1 : 3;
		memcpy(out + used, p, len);
		used += len;
		p += len;
	}
	out[used] = 0;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int decode(const unsigned char *pdu, size_t len)
{
	size_t pos = 0;
	GSM_Error e = GSM_DecodePDUFrame(NULL, &sms, pdu, len, &pos, TRUE);
	return e == ERR_NONE ? (int)sms.Length : -1;
}

/* Encodes `text` (gammu's UCS2) to submit frames; returns the number of parts, -1 on error. */
static int encode(const unsigned char *text)
{
	int length = 0;
	GSM_ClearMultiPartSMSInfo(&info);
	info.EntriesNum = 1;
	info.UnicodeCoding = TRUE;
	info.Class = -1;
	info.Entries[0].ID = SMS_ConcatenatedTextLong;
	info.Entries[0].Buffer = (unsigned char *)text;
	if (GSM_EncodeMultiPartSMS(NULL, &info, &multi) != ERR_NONE)
		return -1;
	for (int i = 0; i < multi.Number; i++) {
		GSM_SMSMessage *part = &multi.SMS[i];
		memcpy(part->Number, number, sizeof number);
		part->SMSC.Number[0] = 0;
		part->SMSC.Number[1] = 0;
		if (GSM_EncodeSMSFrame(NULL, part, frame, PHONE_SMSSubmit, &length, TRUE) != ERR_NONE)
			return -1;
	}
	return multi.Number + (length > 0 ? 0 : 1000);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median ns per call of op over BATCHES batches of about BATCH_NS each. */
#define TIME(name, call, parts)                                                        \
	do {                                                                           \
		double per[BATCHES];                                                   \
		long iters = 1;                                                        \
		for (;;) { /* calibrate: a batch of about BATCH_NS */                  \
			double t0 = now_ns();                                          \
			for (long i = 0; i < iters; i++)                               \
				sink += (call);                                        \
			double t = now_ns() - t0;                                      \
			if (t > BATCH_NS / 4) {                                        \
				iters = (long)(iters * BATCH_NS / t) + 1;              \
				break;                                                 \
			}                                                              \
			iters *= 2;                                                    \
		}                                                                      \
		for (int b = 0; b < BATCHES; b++) {                                    \
			double t0 = now_ns();                                          \
			for (long i = 0; i < iters; i++)                               \
				sink += (call);                                        \
			per[b] = (now_ns() - t0) / iters;                              \
		}                                                                      \
		qsort(per, BATCHES, sizeof per[0], cmp);                               \
		printf("%s %.1f %d\n", name, per[BATCHES / 2], parts);                 \
	} while (0)

int main(void)
{
	unsigned char gsm7[200], ucs2[200];
	size_t gsm7_len = unhex(GSM7_DELIVER, gsm7);
	size_t ucs2_len = unhex(UCS2_DELIVER, ucs2);
	char utf8[4 * 300 + 1];
	char check[4 * 300 + 1];

	EncodeUnicode(number, "+8613912345678", strlen("+8613912345678"));
	chinese(70, utf8);
	DecodeUTF8(text70, utf8, strlen(utf8));
	chinese(300, utf8);
	DecodeUTF8(text300, utf8, strlen(utf8));

	/* Check every result once: a codec that does something else is not timed. */
	if (decode(gsm7, gsm7_len) < 0 || strcmp(DecodeUnicodeString(sms.Text), "How are you?") != 0) {
		fprintf(stderr, "gammu_codec: GSM 7-bit DELIVER decoded wrongly\n");
		return 1;
	}
	if (decode(ucs2, ucs2_len) < 0 || !EncodeUTF8(check, sms.Text) ||
	    strcmp(check, "中兴通讯") != 0) {
		fprintf(stderr, "gammu_codec: UCS2 DELIVER decoded wrongly\n");
		return 1;
	}
	int p70 = encode(text70), p300 = encode(text300);
	if (p70 != 1 || p300 != 5) {
		fprintf(stderr, "gammu_codec: encode gave %d and %d parts (want 1 and 5)\n", p70, p300);
		return 1;
	}

	TIME("decode_gsm7", decode(gsm7, gsm7_len), 1);
	TIME("decode_ucs2", decode(ucs2, ucs2_len), 1);
	TIME("encode_70", encode(text70), p70);
	TIME("encode_300", encode(text300), p300);
	return 0;
}
