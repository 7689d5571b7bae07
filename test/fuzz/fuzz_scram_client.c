/*
 * fuzz_scram_client.c: the pooler as SCRAM client (logging in to PostgreSQL): a hostile
 * server-first message into scram_client_final, then a server-final message into
 * scram_client_verify. Checks that the proof sent is right for the keys in use (ClientKey =
 * proof XOR HMAC(H(ClientKey), AuthMessage)), that only the expected server signature
 * verifies, and that a finished step cannot be replayed.
 *
 * Input: byte 0 options (bit 0: pass-through keys instead of a password; bit 1: the harness
 * sends the correct "v=" signature, the fuzzer's server-final is appended to it; bit 2: a
 * user name that needs escaping), server-first, NUL, server-final.
 *
 * PBKDF2 runs as many rounds as the server's "i=" asks (up to SCRAM_CLIENT_MAX_ITERATIONS);
 * above MAX_PBKDF2_ROUNDS the harness uses pass-through keys instead, to keep its speed.
 */
#include "fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pgusher/scram.h"

#define CLIENT_NONCE "FuzzClientNonce"
#define MAX_PBKDF2_ROUNDS 4096

/* The iteration count scram_client_final will parse: the third attribute, if it is "i=". */
static long long wanted_rounds(const char *msg)
{
    const char *p = msg;
    for (int i = 0; i < 2; i++) {
        p = strchr(p, ',');
        if (!p)
            return 0;
        p++;
    }
    if (p[0] != 'i' || p[1] != '=')
        return 0;
    long long v = 0;
    for (p += 2; *p >= '0' && *p <= '9' && v < 1000000000000LL; p++)
        v = v * 10 + (*p - '0');
    return v;
}

static void check_proof(const struct scram_client *st, const char *final_msg)
{
    const char *p = strstr(final_msg, ",p=");
    FUZZ_CHECK(p && strchr(p + 1, ',') == NULL);
    uint8_t proof[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
    FUZZ_CHECK(scram_b64_decode(p + 3, strlen(p + 3), proof, sizeof proof) == SCRAM_KEY_LEN);
    size_t wlen = (size_t)(p - final_msg);
    size_t alen = strlen(st->client_first_bare) + strlen(st->server_first) + wlen + 2;
    char *auth = malloc(alen + 1);
    FUZZ_CHECK(auth != NULL);
    snprintf(auth, alen + 1, "%s,%s,%.*s", st->client_first_bare, st->server_first, (int)wlen,
             final_msg);
    unsigned int n = 0;
    FUZZ_CHECK(EVP_Digest(st->client_key, SCRAM_KEY_LEN, stored, &n, EVP_sha256(), NULL));
    FUZZ_CHECK(
        HMAC(EVP_sha256(), stored, SCRAM_KEY_LEN, (const uint8_t *)auth, strlen(auth), sig, &n));
    for (int i = 0; i < SCRAM_KEY_LEN; i++)
        FUZZ_CHECK((proof[i] ^ sig[i]) == st->client_key[i]);
    /* The signature expected back is HMAC(ServerKey, AuthMessage). */
    char b64[SCRAM_KEY_LEN * 2];
    FUZZ_CHECK(HMAC(EVP_sha256(), st->server_key, SCRAM_KEY_LEN, (const uint8_t *)auth,
                    strlen(auth), sig, &n));
    FUZZ_CHECK(scram_b64_encode(sig, sizeof sig, b64, sizeof b64) > 0);
    FUZZ_CHECK(strcmp(b64, st->expected_server_sig) == 0);
    free(auth);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *first, *final;
    size_t first_len, final_len;
    struct scram_client st;
    char *out = NULL, *reply = NULL;

    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    data++;
    size--;
    fuzz_next_part(&data, &size, 0, &first, &first_len);
    bool have_final = fuzz_next_part(&data, &size, 0, &final, &final_len);

    memset(&st, 0, sizeof st);
    FUZZ_CHECK(scram_client_first_with_nonce(&st, opt & 4 ? "us,er=x" : NULL, CLIENT_NONCE, &out));
    FUZZ_CHECK(
        strcmp(out, opt & 4 ? "n,,n=us=2Cer=3Dx,r=" CLIENT_NONCE : "n,,n=,r=" CLIENT_NONCE) == 0);
    free(out);
    out = NULL;

    char *sf = (char *)fuzz_dup(first, first_len);
    char *sf_text = fuzz_cstr(first, first_len);
    if ((opt & 1) || wanted_rounds(sf_text) > MAX_PBKDF2_ROUNDS) {
        memset(st.client_key, 0x11, SCRAM_KEY_LEN);
        memset(st.server_key, 0x22, SCRAM_KEY_LEN);
        st.have_keys = true;
    }
    bool ok = scram_client_final(&st, "fuzz-password", sf, first_len, &reply);
    if (ok) {
        FUZZ_CHECK(reply &&
                   strncmp(reply, "c=biws,r=" CLIENT_NONCE, 9 + strlen(CLIENT_NONCE)) == 0);
        FUZZ_CHECK(st.server_first && strlen(st.expected_server_sig) == 44);
        check_proof(&st, reply);
        char *again = NULL;
        FUZZ_CHECK(!scram_client_final(&st, "fuzz-password", sf, first_len, &again) && !again);

        if (have_final) {
            char *sfin;
            size_t sfin_len;
            if (opt & 2) {
                sfin_len = 2 + strlen(st.expected_server_sig) + final_len;
                sfin = malloc(sfin_len);
                FUZZ_CHECK(sfin != NULL);
                memcpy(sfin, "v=", 2);
                memcpy(sfin + 2, st.expected_server_sig, strlen(st.expected_server_sig));
                memcpy(sfin + 2 + strlen(st.expected_server_sig), final, final_len);
            } else {
                sfin = (char *)fuzz_dup(final, final_len);
                sfin_len = final_len;
            }
            bool verified = scram_client_verify(&st, sfin, sfin_len);
            if (verified) {
                size_t el = strlen(st.expected_server_sig);
                FUZZ_CHECK(sfin_len >= 2 + el && memcmp(sfin, "v=", 2) == 0 &&
                           memcmp(sfin + 2, st.expected_server_sig, el) == 0);
                FUZZ_CHECK(sfin_len == 2 + el || sfin[2 + el] == ',');
            } else if (opt & 2) {
                FUZZ_CHECK(final_len != 0); /* the bare correct signature verifies */
            }
            free(sfin);
        }
    } else {
        FUZZ_CHECK(reply == NULL && st.server_first == NULL && st.expected_server_sig[0] == '\0');
        /* Without a server-first there is no signature to accept. */
        if (have_final)
            FUZZ_CHECK(!scram_client_verify(&st, (const char *) final, final_len));
    }
    free(reply);
    free(sf);
    free(sf_text);
    scram_client_reset(&st);
    return 0;
}
